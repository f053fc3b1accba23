"""Replay memory: each 84x84 frame stored once, raw or compressed, stacks rebuilt when sampled.

    from memory import ReplayMemory, Batch, COMPRESSIONS
"""
from memory.frame_stores import COMPRESSIONS
from memory.replay import Batch, ReplayMemory
from memory.sizing import MemoryTooLargeError, available_memory_bytes

__all__ = ["COMPRESSIONS", "Batch", "MemoryTooLargeError", "ReplayMemory", "available_memory_bytes"]
