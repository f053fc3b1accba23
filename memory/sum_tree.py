"""A sum tree over the replay memory's slots: proportional sampling in O(log n) per draw.

The structure of prioritized experience replay (Schaul et al. 2016, appendix B.2.1; Dopamine's
``sum_tree.py``): leaves hold each slot's priority, every inner node the sum of its two
children, so the root is the total and a prefix sum finds its leaf by one walk down. Updates and
draws are vectorized over a batch with numpy, one tree level at a time.
"""
import math

import numpy as np


class SumTree:
    """Non-negative float64 priorities of ``capacity`` slots."""

    def __init__(self, capacity: int):
        self._capacity = int(capacity)
        self._leaves = 1 << max(0, (self._capacity - 1).bit_length())  # a power of two >= capacity
        self._depth = self._leaves.bit_length() - 1
        self._nodes = np.zeros(2 * self._leaves, dtype=np.float64)  # node i has children 2i, 2i+1; root 1

    @property
    def nbytes(self) -> int:
        return self._nodes.nbytes

    @property
    def total(self) -> float:
        return float(self._nodes[1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        """float64[B] priorities of ``slots``."""
        return self._nodes[self._leaves + np.asarray(slots)]

    def set(self, slots, priorities):
        """Set the priorities of ``slots`` (int[B]; a slot given twice gets one of its values) and
        the sums above them."""
        if np.ndim(slots) == 0 and np.ndim(priorities) == 0:
            return self._set_one(int(slots), float(priorities))
        nodes = self._leaves + np.atleast_1d(np.asarray(slots, dtype=np.int64))
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), nodes.shape)
        if not np.all(priorities >= 0) or not np.all(np.isfinite(priorities)):
            raise ValueError("priorities must be finite and non-negative")
        self._nodes[nodes] = priorities
        for _ in range(self._depth):
            nodes = np.unique(nodes >> 1)
            self._nodes[nodes] = self._nodes[2 * nodes] + self._nodes[2 * nodes + 1]

    def _set_one(self, slot: int, priority: float):
        """``set`` for one slot (each agent step sets one): plain Python, faster than array ops for one slot."""
        if not 0.0 <= priority < math.inf:
            raise ValueError("priorities must be finite and non-negative")
        tree, node = self._nodes, self._leaves + slot
        tree[node] = priority
        node >>= 1
        while node:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node >>= 1

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """int64[B] slots whose cumulative priority range holds each of ``prefix_sums`` (in [0, total)).

        A slot is drawn with probability priority / total when the prefix sums are uniform;
        a zero-priority slot is never returned unless every priority is zero.
        """
        values = np.array(prefix_sums, dtype=np.float64)
        nodes = np.ones(values.shape, dtype=np.int64)
        for _ in range(self._depth):
            left = self._nodes[2 * nodes]
            right = self._nodes[2 * nodes + 1]
            # Go right past the left sum, or whenever the left side holds nothing (rounding at the edge).
            go_right = ((values >= left) & (right > 0)) | (left <= 0)
            values = np.where(go_right, values - left, values)
            nodes = 2 * nodes + go_right
        return np.minimum(nodes - self._leaves, self._capacity - 1)

    def state(self) -> np.ndarray:
        """float64[capacity], the leaf priorities (what ``restore`` rebuilds the tree from)."""
        return self._nodes[self._leaves:self._leaves + self._capacity].copy()

    def restore(self, priorities: np.ndarray):
        priorities = np.asarray(priorities, dtype=np.float64)
        if priorities.shape != (self._capacity,):
            raise ValueError(f"priorities of shape {priorities.shape}, expected ({self._capacity},)")
        self._nodes[:] = 0.0
        self.set(np.arange(self._capacity), priorities)
