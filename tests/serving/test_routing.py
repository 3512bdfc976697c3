"""Routing decisions: weights, sticky keys, canary steps that keep earlier assignments."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from modelsteward.serving import routing


def test_weights_split_requests_within_tolerance() -> None:
    bounds = routing.cumulative([0.2, 0.8])
    rng = np.random.default_rng(1)
    arms = np.concatenate([routing.choose_for_request(bounds, 1, rng=rng, keys=None, salt="x") for _ in range(20_000)])
    share = (arms == 0).mean()
    # 20,000 Bernoulli(0.2) draws: the standard error is 0.0028, so 0.02 is over seven of them.
    assert abs(share - 0.2) < 0.02


def test_one_draw_per_request_without_a_sticky_key() -> None:
    arms = routing.choose_for_request(
        routing.cumulative([0.5, 0.5]), 50, rng=np.random.default_rng(0), keys=None, salt="x"
    )
    assert len(set(arms)) == 1


def test_sticky_keys_are_stable_and_split_by_weight() -> None:
    keys = pd.Series([f"customer-{i}" for i in range(20_000)])
    bounds = routing.cumulative([0.3, 0.7])
    first = routing.choose_for_request(bounds, len(keys), rng=np.random.default_rng(), keys=keys, salt="dep")
    again = routing.choose_for_request(bounds, len(keys), rng=np.random.default_rng(), keys=keys, salt="dep")
    assert (first == again).all()
    assert abs((first == 0).mean() - 0.3) < 0.02
    other = routing.choose_for_request(bounds, len(keys), rng=np.random.default_rng(), keys=keys, salt="other")
    assert (first != other).any()  # another deployment splits the same customers independently


def test_stepping_a_canary_up_keeps_everyone_already_on_it() -> None:
    keys = pd.Series(np.arange(10_000))
    salt = routing.salt_for("credit-risk")
    small = routing.choose(routing.cumulative([0.05, 0.95]), routing.sticky_points(keys, salt))
    large = routing.choose(routing.cumulative([0.25, 0.75]), routing.sticky_points(keys, salt))
    assert ((small == 0) <= (large == 0)).all()  # nobody leaves the canary when it grows
    full = routing.choose(routing.cumulative([1.0, 0.0]), routing.sticky_points(keys, salt))
    assert (full == 0).all()


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=6))
def test_every_point_lands_on_an_arm(weights: list[float]) -> None:
    total = sum(weights)
    weights = [w / total for w in weights] if total > 0 else [1.0] * len(weights)
    bounds = routing.cumulative(weights)
    points = np.linspace(0, 1, 101)[:-1]
    chosen = routing.choose(bounds, points)
    assert ((chosen >= 0) & (chosen < len(weights))).all()
