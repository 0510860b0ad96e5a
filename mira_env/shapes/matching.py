"""Minimum-cost assignment (Hungarian algorithm) for object-level scene comparison; pure Python.

Scenes hold at most 9 objects, so an O(n^3) pure-Python solver on an at most 18x18 matrix is fast
enough and keeps the shapes world free of scipy.
"""

from __future__ import annotations

from typing import Sequence


def min_cost_assignment(cost: Sequence[Sequence[float]]) -> list[int]:
    """For a square cost matrix, ``assignment[row] = column`` minimising the total cost."""
    n = len(cost)
    if n == 0:
        return []
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (n + 1)
    p = [0] * (n + 1)      # p[col] = row matched to col (1-based), 0 = free
    way = [0] * (n + 1)
    for row in range(1, n + 1):
        p[0] = row
        col0 = 0
        minv = [inf] * (n + 1)
        used = [False] * (n + 1)
        while True:
            used[col0] = True
            row0 = p[col0]
            delta, col1 = inf, 0
            cost_row = cost[row0 - 1]
            for col in range(1, n + 1):
                if not used[col]:
                    current = cost_row[col - 1] - u[row0] - v[col]
                    if current < minv[col]:
                        minv[col], way[col] = current, col0
                    if minv[col] < delta:
                        delta, col1 = minv[col], col
            for col in range(n + 1):
                if used[col]:
                    u[p[col]] += delta
                    v[col] -= delta
                else:
                    minv[col] -= delta
            col0 = col1
            if p[col0] == 0:
                break
        while True:
            col1 = way[col0]
            p[col0] = p[col1]
            col0 = col1
            if col0 == 0:
                break
    assignment = [0] * n
    for col in range(1, n + 1):
        if p[col]:
            assignment[p[col] - 1] = col - 1
    return assignment


def match(left: Sequence, right: Sequence, pair_cost, unmatched_cost: float = 1.0
          ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Optimal matching of ``left`` to ``right`` items; either side may stay unmatched at ``unmatched_cost``.

    Returns ``(pairs, unmatched_left, unmatched_right)`` with indices into the inputs.
    """
    n, m = len(left), len(right)
    size = n + m
    big = 1e6
    matrix = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(size):
            if i < n and j < m:
                matrix[i][j] = pair_cost(left[i], right[j])
            elif i < n:            # left i unmatched (dummy column n.. only its own slot)
                matrix[i][j] = unmatched_cost if j - m == i else big
            elif j < m:            # right j unmatched
                matrix[i][j] = unmatched_cost if i - n == j else big
            else:
                matrix[i][j] = 0.0
    assignment = min_cost_assignment(matrix)
    pairs, lonely_left, lonely_right = [], [], []
    for i in range(n):
        j = assignment[i]
        (pairs.append((i, j)) if j < m else lonely_left.append(i))
    matched_right = {j for _, j in pairs}
    lonely_right = [j for j in range(m) if j not in matched_right]
    return pairs, lonely_left, lonely_right
