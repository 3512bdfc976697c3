"""Routing decisions, pure: which arm answers each row, by weight or by a sticky key's hash."""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import pandas as pd

_TWO_64 = float(2**64)


def cumulative(weights: list[float]) -> np.ndarray:
    """Upper bounds of each arm's slice of [0, 1). The challengers come first, so raising a
    canary's share (5% -> 25%) keeps every key that already met it: its slice only grows."""
    bounds = np.cumsum(np.asarray(weights, dtype=float))
    if bounds.size:
        bounds[-1] = 1.0  # the last arm (the champion) takes whatever rounding left over
    return bounds


@functools.lru_cache(maxsize=4096)
def salt_for(deployment: str) -> str:
    """A 16-character hash key per deployment, so two deployments split the same customers independently."""
    return hashlib.sha256(deployment.encode()).hexdigest()[:16]


def sticky_points(values: pd.Series, salt: str) -> np.ndarray:
    """Map key values to points in [0, 1), stably across processes and releases (no Python hash()).
    ``salt`` is any string (usually the deployment's name)."""
    key = salt if len(salt) == 16 else salt_for(salt)
    hashed = pd.util.hash_pandas_object(values.astype("string"), index=False, hash_key=key).to_numpy()
    return hashed.astype(np.float64) / _TWO_64


def choose(bounds: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The arm index for each point: the first slice whose upper bound is above it."""
    return np.minimum(np.searchsorted(bounds, points, side="right"), len(bounds) - 1)


def choose_for_request(
    bounds: np.ndarray, n_rows: int, *, rng: np.random.Generator, keys: pd.Series | None, salt: str
) -> np.ndarray:
    """Arms for the rows of one request: by the sticky key when there is one (row by row), else
    one random draw for the whole request (a request is the unit of an A/B split)."""
    if len(bounds) == 1:
        return np.zeros(n_rows, dtype=np.intp)
    if keys is not None:
        return choose(bounds, sticky_points(keys, salt))
    arm = int(choose(bounds, np.array([rng.random()]))[0])
    return np.full(n_rows, arm, dtype=np.intp)
