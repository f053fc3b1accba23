"""Replay memory: each 84x84 frame stored once, raw or compressed, stacks rebuilt when sampled.

    from memory import ReplayMemory, Batch, COMPRESSIONS
"""
from memory.frame_stores import COMPRESSIONS
from memory.replay import Batch, ReplayMemory
from memory.sizing import MemoryTooLargeError, available_memory_bytes
from memory.streams import ReplayStreams

__all__ = ["COMPRESSIONS", "Batch", "MemoryTooLargeError", "ReplayMemory", "ReplayStreams", "available_memory_bytes"]
