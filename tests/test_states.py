"""Behavior states: HMM over item sequences, named, decoded and summarised per user."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segkit.errors import ParameterError
from segkit.sequences import Sequences
from segkit.states import fit_behavior_states, plot_emissions, plot_state_transitions


def _planted(n: int = 120, seed: int = 0) -> Sequences:
    """Readers emit blog pages, shoppers product/cart items: two clearly separated states."""
    rng = np.random.default_rng(seed)
    items, users = [], []
    for i in range(n):
        if i % 2:
            items.append(list(rng.choice(["blog", "video"], size=rng.integers(3, 8), p=[0.8, 0.2])))
        else:
            items.append(list(rng.choice(["product", "add_to_cart", "cart"], size=rng.integers(3, 8))))
        users.append(f"u{i // 2}" if i % 4 < 2 else f"v{i}")
    ids = pd.DataFrame({"sequence_id": [f"s{i}" for i in range(n)], "user_id": users, "length": [len(s) for s in items]})
    return Sequences(ids, [[str(x) for x in s] for s in items], "session", "page_type")


def test_two_planted_behaviors_are_two_states_named_by_their_items():
    bs = fit_behavior_states(_planted(), candidates=[1, 2, 3], random_state=0)
    assert bs.model.n_components == 2
    assert bs.selection.loc[bs.selection["chosen"], "n_states"].item() == 2
    assert any(n.split(" / ")[0] in {"add_to_cart", "cart", "product"} for n in bs.names)
    assert any(n.startswith("blog") for n in bs.names)
    np.testing.assert_allclose(bs.emissions.sum(axis=1), 1.0)
    np.testing.assert_allclose(bs.transitions.sum(axis=1), 1.0)


def test_decoded_states_follow_the_items_and_users_get_occupancy():
    seqs = _planted()
    bs = fit_behavior_states(seqs, candidates=[2], random_state=0)
    blog_state = bs.events.loc[bs.events["item"] == "blog", "state"].mode().item()
    assert (bs.events.loc[bs.events["item"] == "cart", "state"] != blog_state).all()
    assert len(bs.events) == sum(len(s) for s in seqs)
    shares = bs.users[[c for c in bs.users.columns if c.startswith("share_")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert set(bs.users["user_id"]) == set(seqs.ids["user_id"])
    assert set(bs.users["dominant_state"]) <= set(bs.names)


def test_empty_sequences_are_skipped_and_plots_return_figures():
    seqs = _planted(40)
    seqs = Sequences(pd.concat([seqs.ids, pd.DataFrame({"sequence_id": ["empty"], "user_id": ["z"], "length": [0]})],
                               ignore_index=True), seqs.items + [[]], "session", "page_type")
    bs = fit_behavior_states(seqs, candidates=[2])
    assert "z" not in set(bs.users["user_id"])
    assert plot_emissions(bs).axes and plot_state_transitions(bs).axes


def test_bad_input_is_a_clear_error():
    with pytest.raises(ParameterError, match="at least one non-empty sequence"):
        fit_behavior_states([[], []])
    with pytest.raises(ParameterError, match=r"candidates.*distinct items \(2\)"):
        fit_behavior_states([["a", "b"]], candidates=[3])


def test_fit_on_a_sample_decodes_every_sequence():
    seqs = _planted(200)
    bs = fit_behavior_states(seqs, candidates=[2], max_sequences=50, random_state=1)
    assert bs.selection["n_sequences"].tolist() == [50]
    assert len(bs.events) == sum(len(s) for s in seqs)
