"""Tests of segkit.markov: counting, higher orders, model selection, absorption, removal effects, plots."""
from __future__ import annotations

import doctest
import math
from collections import Counter

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from sklearn.base import clone  # noqa: E402

import segkit.markov as markov  # noqa: E402
from segkit.errors import NotFittedError, ParameterError, SchemaError, SegkitError  # noqa: E402
from segkit.markov import (  # noqa: E402
    MarkovChain,
    plot_transition_flow,
    plot_transition_heatmap,
    select_markov_order,
)

S, E = "(start)", "(exit)"
TINY = [["a", "b"], ["a", "a", "b"], ["b"]]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _brute_counts(seqs, k, start=S, exit_=E):
    """(context, next) -> count by walking every sequence with explicit padding."""
    counts: Counter = Counter()
    for seq in seqs:
        padded = [start] * k + list(seq) + [exit_]
        for t in range(k, len(padded)):
            ctx = padded[t - k: t]
            counts[(ctx[0] if k == 1 else tuple(ctx), padded[t])] += 1
    return counts


def _sample_first_order(p_start, p_trans, p_exit, n_seq, seed, max_len=60):
    """Sequences of a first-order chain over items 0..m-1 with a per-step exit probability."""
    rng = np.random.default_rng(seed)
    m = len(p_start)
    seqs = []
    for _ in range(n_seq):
        s = [int(rng.choice(m, p=p_start))]
        while len(s) < max_len and rng.random() >= p_exit[s[-1]]:
            s.append(int(rng.choice(m, p=p_trans[s[-1]])))
        seqs.append([f"s{i}" for i in s])
    return seqs


# ---------------------------------------------------------------------------------------------
# first-order estimation


def test_first_order_counts_and_matrix_by_hand():
    mc = MarkovChain().fit(TINY)
    assert mc.states_ == [S, "a", "b", E]
    expected_counts = np.array([
        [0, 2, 1, 0],  # start -> a twice, -> b once
        [0, 1, 2, 0],  # a -> a once, a -> b twice
        [0, 0, 0, 3],  # b always ends
        [0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(mc.counts_.to_numpy(), expected_counts)
    expected = np.array([
        [0, 2 / 3, 1 / 3, 0],
        [0, 1 / 3, 2 / 3, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 1],  # exit absorbing
    ])
    tm = mc.transition_matrix_
    np.testing.assert_allclose(tm.to_numpy(), expected)
    assert tm.index.tolist() == mc.states_ and tm.columns.tolist() == mc.states_
    assert tm.index.name == "from" and tm.columns.name == "to"
    np.testing.assert_allclose(tm.sum(axis=1), 1.0)
    assert (mc.n_sequences_, mc.n_events_, mc.n_transitions_) == (3, 6, 9)


def test_smoothing_adds_alpha_to_every_possible_next_state():
    mc = MarkovChain(smoothing=1.0).fit(TINY)
    tm = mc.transition_matrix_
    # start row: counts (2, 1, 0) over (a, b, exit) plus 1 each, over 3 + 3
    np.testing.assert_allclose(tm.loc[S].to_numpy(), [0, 3 / 6, 2 / 6, 1 / 6])
    np.testing.assert_allclose(tm.loc["b"].to_numpy(), [0, 1 / 6, 1 / 6, 4 / 6])
    assert (tm[S] == 0).all()
    np.testing.assert_allclose(tm.sum(axis=1), 1.0)


def test_to_frame_is_a_tidy_edge_table():
    edges = MarkovChain().fit(TINY).to_frame()
    assert list(edges.columns) == ["from", "to", "count", "prob"]
    assert edges["count"].tolist() == sorted(edges["count"], reverse=True)
    got = {(f, t): (c, p) for f, t, c, p in edges.itertuples(index=False)}
    assert got[(S, "a")] == (2, pytest.approx(2 / 3))
    assert got[("b", E)] == (3, 1.0)
    assert sum(c for c, _ in got.values()) == 9


def test_dataframe_codes_and_lists_give_the_same_chain():
    df = pd.DataFrame({
        "session_id": ["s2", "s1", "s1", "s3", "s2", "s2"],
        "timestamp": pd.to_datetime([3, 2, 1, 1, 1, 2], unit="s", utc=True),
        "event": ["b", "b", "a", "b", "a", "a"],
    })
    before = df.copy()
    from_frame = MarkovChain().fit(df)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    from_lists = MarkovChain().fit(TINY)
    from_codes = MarkovChain().fit(codes=[0, 1, 0, 0, 1, 1], lengths=[2, 3, 1], labels=["a", "b"])
    for other in (from_frame, from_codes):
        pd.testing.assert_frame_equal(other.counts_, from_lists.counts_)


def test_dataframe_custom_columns_and_ties_keep_row_order():
    df = pd.DataFrame({"visit": [1, 1, 1], "step": [5, 5, 1], "page": ["x", "y", "z"]})
    mc = MarkovChain().fit(df, session_col="visit", timestamp_col="step", event_col="page")
    edges = {(f, t) for f, t, *_ in mc.to_frame().itertuples(index=False)}
    assert edges == {(S, "z"), ("z", "x"), ("x", "y"), ("y", E)}


def test_codes_that_never_occur_are_not_states():
    mc = MarkovChain().fit(codes=np.array([3, 1, 3]), lengths=[3], labels=["w", "x", "y", "z"])
    assert mc.items_ == ["x", "z"]


def test_mixed_and_tuple_items():
    mc = MarkovChain().fit([[1, "a", 1], ["a"]])
    assert mc.items_ == [1, "a"]  # by type name when types differ
    mc = MarkovChain().fit([[("p", 1), ("p", 2)], [("p", 1)]])
    assert mc.items_ == [("p", 1), ("p", 2)]
    assert not isinstance(mc.transition_matrix_.index, pd.MultiIndex)
    assert mc.predict_next([("p", 1)]) == ("p", 2)  # a tie with the exit: the first state wins


def test_mean_position():
    mc = MarkovChain().fit([["a", "b"], ["b", "a", "c"]])
    pos = mc.mean_position_
    assert pos[S] == 0 and pos["a"] == 1.5 and pos["b"] == 1.5 and pos["c"] == 3.0
    assert pos[E] == pytest.approx(2.5 + 1)


# ---------------------------------------------------------------------------------------------
# higher orders


def test_second_order_counts_by_hand():
    mc = MarkovChain(order=2).fit([["a", "b"], ["a", "a", "b"]])
    counts = mc.counts_
    assert counts.index.names == ["t-2", "t-1"]
    assert counts.columns.tolist() == ["a", "b", E]
    assert counts.loc[(S, S)].tolist() == [2, 0, 0]
    assert counts.loc[(S, "a")].tolist() == [1, 1, 0]
    assert counts.loc[("a", "a")].tolist() == [0, 1, 0]
    assert counts.loc[("a", "b")].tolist() == [0, 0, 2]
    np.testing.assert_allclose(mc.transition_matrix_.sum(axis=1), 1.0)
    assert mc.n_params_ == 4 * 2  # four contexts seen, two free probabilities each


items_st = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seqs=st.lists(st.lists(items_st, min_size=1, max_size=7), min_size=1, max_size=12), k=st.integers(1, 3))
def test_counts_match_a_brute_force_counter(seqs, k):
    edges = MarkovChain(order=k).fit(seqs).to_frame()
    got = {(f, t): c for f, t, c, _ in edges.itertuples(index=False)}
    assert got == dict(_brute_counts(seqs, k))


@settings(max_examples=25, deadline=None)
@given(seqs=st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=6), min_size=1, max_size=10),
       k=st.integers(1, 3), alpha=st.sampled_from([0.0, 0.5]))
def test_training_loglik_matches_brute_force_and_score(seqs, k, alpha):
    mc = MarkovChain(order=k, smoothing=alpha).fit(seqs)
    counts = _brute_counts(seqs, k)
    totals: Counter = Counter()
    for (ctx, _), c in counts.items():
        totals[ctx] += c
    v = len(mc.items_) + 1
    ll = sum(c * math.log((c + alpha) / (totals[ctx] + alpha * v)) for (ctx, _), c in counts.items())
    assert mc.loglik_ == pytest.approx(ll)
    assert mc.score(seqs) == pytest.approx(ll)
    assert mc.n_params_ == len(totals) * len(mc.items_)


def test_aic_bic_formulas():
    mc = MarkovChain().fit(TINY)
    ll = 4 * math.log(2 / 3) + 2 * math.log(1 / 3)  # start->a, start->b, a->a, a->b (x2); b->exit is certain
    assert mc.loglik_ == pytest.approx(ll)
    assert mc.n_params_ == 3 * 2  # 3 contexts (start, a, b) x (3 next states - 1)
    assert mc.aic() == pytest.approx(-2 * ll + 2 * 6)
    assert mc.bic() == pytest.approx(-2 * ll + 6 * math.log(9))


def test_score_unseen_transition_is_minus_inf_without_smoothing():
    assert MarkovChain().fit(TINY).score([["b", "a"]]) == -math.inf
    assert math.isfinite(MarkovChain(smoothing=0.1).fit(TINY).score([["b", "a"]]))


def test_next_proba_backs_off_for_unseen_contexts():
    mc = MarkovChain(order=2).fit([["a", "b", "c"], ["b", "b", "a"]])
    seen = mc.next_proba(["a", "b"])
    assert seen.attrs["order_used"] == 2 and seen["c"] == 1.0
    unseen = mc.next_proba(["c", "b"])  # (c, b) never seen: falls back to what follows b
    assert unseen.attrs["order_used"] == 1
    pd.testing.assert_series_equal(unseen, MarkovChain().fit([["a", "b", "c"], ["b", "b", "a"]]).next_proba(["b"]),
                                   check_names=False)
    assert mc.predict_next([]) in ("a", "b")  # the start context
    assert mc.next_proba([S, "a"]).equals(mc.next_proba(["a"]))
    assert mc.next_proba("a").equals(mc.next_proba(["a"]))


def test_predict_next_ties_go_to_the_first_state():
    mc = MarkovChain().fit([["a", "b"], ["a", "c"]])
    assert mc.predict_next(["a"]) == "b"
    np.testing.assert_allclose(mc.next_proba(["a"]).sum(), 1.0)


# ---------------------------------------------------------------------------------------------
# order selection


def _second_order_data(n_seq, seed):
    rng = np.random.default_rng(seed)
    m = 5
    table = rng.dirichlet(np.full(m, 0.3), size=(m + 1, m + 1))  # P(next | previous two), 0 = start
    seqs = []
    for _ in range(n_seq):
        prev2, prev1, s = 0, 0, []
        while True:
            nxt = int(rng.choice(m, p=table[prev2, prev1])) + 1
            s.append(f"e{nxt}")
            prev2, prev1 = prev1, nxt
            if rng.random() < 0.06 or len(s) >= 80:
                break
        seqs.append(s)
    return seqs


def test_select_order_picks_two_on_a_second_order_process():
    sel = select_markov_order(_second_order_data(1500, seed=1), orders=(1, 2, 3), criterion="bic", random_state=0)
    t = sel.table.set_index("order")
    assert sel.order == 2 and t.loc[2, "chosen"] and t["chosen"].sum() == 1
    assert t.loc[2, "accuracy"] > t.loc[1, "accuracy"] + 0.05
    assert t.loc[3, "accuracy"] <= t.loc[2, "accuracy"] + 0.01
    assert t.loc[2, "accuracy_gain"] == pytest.approx(t.loc[2, "accuracy"] - t.loc[1, "accuracy"])
    assert t.loc[1, "loglik"] < t.loc[2, "loglik"] < t.loc[3, "loglik"]
    assert t["bic"].idxmin() == 2 and t.loc[3, "n_params"] > t.loc[2, "n_params"] > t.loc[1, "n_params"]
    assert "order 2 has the lowest BIC" in sel.reason and "order 1" in sel.reason
    assert sel.model.order == 2 and sel.model.n_sequences_ == 1500
    assert sel.n_train + sel.n_test == 1500 and sel.n_test == 300


def test_select_order_table_matches_separate_fits():
    seqs = _second_order_data(200, seed=3)
    sel = select_markov_order(seqs, orders=(2, 1), test_size=0.0)
    assert sel.table["order"].tolist() == [1, 2] and sel.table["accuracy"].isna().all()
    for o in (1, 2):
        mc = MarkovChain(order=o).fit(seqs)
        row = sel.table.set_index("order").loc[o]
        assert row["loglik"] == pytest.approx(mc.loglik_)
        assert row["n_params"] == mc.n_params_
        assert row["aic"] == pytest.approx(mc.aic()) and row["bic"] == pytest.approx(mc.bic())


def test_select_order_picks_one_on_a_first_order_process():
    rng = np.random.default_rng(4)
    m = 4
    seqs = _sample_first_order(rng.dirichlet(np.ones(m)), rng.dirichlet(np.full(m, 0.5), size=m), np.full(m, 0.1),
                               800, seed=5)
    sel = select_markov_order(seqs, criterion="aic")
    assert sel.order == 1 and "lowest AIC" in sel.reason


def test_select_order_accuracy_criterion_and_unseen_test_items():
    seqs = _second_order_data(300, seed=2) + [["never-seen-in-training"]]
    sel = select_markov_order(seqs, orders=(1, 2), criterion="accuracy", test_size=0.3, random_state=1)
    assert sel.order == int(sel.table.loc[sel.table["accuracy"].idxmax(), "order"])
    assert "highest held-out accuracy" in sel.reason


# ---------------------------------------------------------------------------------------------
# absorbing chains and removal effects


def test_absorption_closed_form_on_a_self_loop_chain():
    # start -> a; a -> a 2/4, a -> buy 1/4, a -> exit 1/4
    mc = MarkovChain().fit([["a", "a", "a", "buy"], ["a"]])
    probs = mc.absorption_probabilities("buy")
    assert probs.columns.tolist() == ["buy", E] and probs.index.tolist() == [S, "a"]
    np.testing.assert_allclose(probs.loc["a"].to_numpy(), [0.5, 0.5])  # (1/4) / (1 - 2/4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    steps = mc.expected_steps("buy")
    assert steps["a"] == pytest.approx(1 / (1 - 0.5)) and steps[S] == pytest.approx(3.0)
    assert mc.conversion_probability("buy") == pytest.approx(0.5)


def test_expected_steps_from_start_is_mean_length_plus_one():
    seqs = _sample_first_order([0.5, 0.5, 0.0], [[0.2, 0.5, 0.3], [0.4, 0.1, 0.5], [0.3, 0.3, 0.4]],
                               [0.2, 0.3, 0.4], 300, seed=6)
    mc = MarkovChain().fit(seqs)
    assert mc.expected_steps()[S] == pytest.approx(np.mean([len(s) for s in seqs]) + 1)


def test_absorption_probabilities_match_monte_carlo():
    seqs = _sample_first_order([0.6, 0.4, 0.0, 0.0], [[0.3, 0.4, 0.2, 0.1], [0.3, 0.2, 0.1, 0.4],
                               [0.1, 0.1, 0.6, 0.2], [0.25, 0.25, 0.25, 0.25]], [0.15, 0.15, 0.1, 0.3], 400, seed=7)
    mc = MarkovChain().fit(seqs)
    exact = mc.absorption_probabilities("s3").loc[S, "s3"]
    p = mc.transition_matrix_.to_numpy()
    absorbing = {mc.states_.index("s3"), len(mc.states_) - 1}
    rng = np.random.default_rng(0)
    n_walks = 20_000
    state = np.zeros(n_walks, dtype=np.int64)
    done = np.zeros(n_walks, dtype=bool)
    cum = np.cumsum(p, axis=1)
    for _ in range(400):
        u = rng.random(n_walks)
        nxt = (cum[state] < u[:, None]).sum(axis=1)
        state = np.where(done, state, np.minimum(nxt, p.shape[0] - 1))
        done |= np.isin(state, list(absorbing))
        if done.all():
            break
    mc_estimate = np.mean(state == mc.states_.index("s3"))
    se = math.sqrt(exact * (1 - exact) / n_walks)
    assert abs(mc_estimate - exact) < 4 * se


def test_removal_effects_known_answers():
    # two symmetric channels, each converting half the time: removing either halves conversion
    sym = MarkovChain().fit([["a", "buy"], ["b", "buy"], ["a"], ["b"]]).removal_effects("buy")
    assert sym["state"].tolist() == ["a", "b"]
    np.testing.assert_allclose(sym["removal_effect"], [0.5, 0.5])
    np.testing.assert_allclose(sym["share"], [0.5, 0.5])
    np.testing.assert_allclose(sym["conversion_without"], [0.25, 0.25])
    # a path a -> b -> buy: both are necessary; c never converts
    chain = MarkovChain().fit([["a", "b", "buy"], ["a"], ["c"]]).removal_effects("buy")
    got = chain.set_index("state")
    assert chain.attrs["conversion"] == pytest.approx(1 / 3)
    assert got.loc["a", "removal_effect"] == pytest.approx(1.0) and got.loc["b", "removal_effect"] == pytest.approx(1.0)
    assert got.loc["c", "removal_effect"] == 0.0 and chain["state"].iloc[-1] == "c"
    assert got["share"].sum() == pytest.approx(1.0)


def _removal_by_redirect(mc, target):
    """Conversion without each state, recomputed from scratch with its incoming transitions sent to the exit."""
    p = mc.transition_matrix_.to_numpy().copy()
    t_code, exit_code = mc.states_.index(target), len(mc.states_) - 1

    def conversion(mat):
        transient = [c for c in range(len(mc.states_)) if c not in (t_code, exit_code)]
        q = mat[np.ix_(transient, transient)]
        return np.linalg.solve(np.eye(len(transient)) - q, mat[transient, t_code])[0]

    out = {}
    for s, name in enumerate(mc.states_):
        if s in (0, t_code, exit_code):
            continue
        redirected = p.copy()
        redirected[:, exit_code] += redirected[:, s]
        redirected[:, s] = 0.0
        out[name] = conversion(redirected)
    return conversion(p), out


def test_removal_effects_closed_form_equals_redirecting():
    seqs = _sample_first_order([0.4, 0.3, 0.3, 0.0, 0.0], np.random.default_rng(8).dirichlet(np.ones(5), size=5),
                               [0.2, 0.2, 0.2, 0.1, 0.3], 500, seed=9)
    mc = MarkovChain(smoothing=0.5).fit(seqs)
    base, without = _removal_by_redirect(mc, "s4")
    table = mc.removal_effects("s4").set_index("state")
    assert table.attrs["conversion"] == pytest.approx(base)
    for name, value in without.items():
        assert table.loc[name, "conversion_without"] == pytest.approx(value, abs=1e-12)
        assert table.loc[name, "removal_effect"] == pytest.approx(1 - value / base)
    assert table["removal_effect"].is_monotonic_decreasing


# ---------------------------------------------------------------------------------------------
# errors and the estimator contract


@pytest.mark.parametrize(
    ("kwargs", "data", "match"),
    [
        ({}, [], "sequences is empty"),
        ({}, [["a"], []], r"sequences\[1\] is empty"),
        ({"order": 0}, TINY, "Parameter 'order' got 0; allowed: \\[1, 2, 3\\]"),
        ({"order": 4}, TINY, "'order' got 4"),
        ({"order": True}, TINY, "'order' got True"),
        ({"smoothing": -0.5}, TINY, "'smoothing' got -0.5; allowed: a finite number >= 0"),
        ({"smoothing": float("nan")}, TINY, "'smoothing' got nan"),
        ({}, [["a", ["not", "hashable"]]], r"sequences\[0\]\[1\] = \['not', 'hashable'\] \(list\) is not hashable"),
        ({}, [["a", None]], r"sequences\[0\]\[1\] = None .* missing"),
        ({}, ["abc"], r"sequences\[0\] is str 'abc': a string is not a sequence of items"),
        ({}, "abc", "sequences must be a list of sequences"),
        ({"start_state": "a"}, TINY, "start_state='a' is also an item"),
        ({"exit_state": S}, TINY, "start_state and exit_state must differ"),
    ],
)
def test_fit_errors(kwargs, data, match):
    with pytest.raises(ParameterError, match=match):
        MarkovChain(**kwargs).fit(data)


def test_input_mode_errors():
    with pytest.raises(ParameterError, match="session_col applies to a DataFrame"):
        MarkovChain().fit(TINY, session_col="visit")
    with pytest.raises(ParameterError, match="lengths applies to pre-encoded codes"):
        MarkovChain().fit(TINY, lengths=[1])
    with pytest.raises(ParameterError, match="either sequences or codes"):
        MarkovChain().fit(TINY, codes=[0], lengths=[1])
    with pytest.raises(ParameterError, match="lengths is required"):
        MarkovChain().fit(codes=[0, 1])
    with pytest.raises(ParameterError, match="lengths sum to 3 but codes has 2"):
        MarkovChain().fit(codes=[0, 1], lengths=[3])
    with pytest.raises(ParameterError, match="codes must hold integers"):
        MarkovChain().fit(codes=["a"], lengths=[1])
    with pytest.raises(ParameterError, match="labels has 1 entries but codes holds code 1"):
        MarkovChain().fit(codes=[0, 1], lengths=[2], labels=["a"])
    with pytest.raises(ParameterError, match="no data"):
        MarkovChain().fit()
    with pytest.raises(SchemaError, match="Column 'event' not found in sequences frame; did you mean 'events'"):
        MarkovChain().fit(pd.DataFrame({"session_id": [1], "timestamp": [1], "events": ["a"]}))
    with pytest.raises(ParameterError, match="Column 'event' has 1 missing value"):
        MarkovChain().fit(pd.DataFrame({"session_id": [1, 1], "timestamp": [1, 2], "event": ["a", None]}))


def test_order_three_item_limit():
    with pytest.raises(ParameterError, match="order=3 supports at most 55,10[0-9] distinct items"):
        MarkovChain(order=3).fit(codes=np.arange(60_000), lengths=np.ones(60_000, dtype=int))


def test_unknown_target_and_context_have_did_you_mean():
    mc = MarkovChain().fit([["home", "purchase"], ["home"]])
    with pytest.raises(ParameterError, match="target='purchse' is not an item of the chain; did you mean 'purchase'"):
        mc.removal_effects("purchse")
    with pytest.raises(ParameterError, match="the exit state is always absorbing"):
        mc.removal_effects(E)
    with pytest.raises(ParameterError, match="the start state cannot be a target"):
        mc.conversion_probability(S)
    with pytest.raises(ParameterError, match="absorbing='hom' is not an item.*did you mean 'home'"):
        mc.absorption_probabilities(["hom"])
    with pytest.raises(ParameterError, match=r"context\[0\] = 'hme' is not a state of the chain; did you mean 'home'"):
        mc.predict_next(["hme"])
    with pytest.raises(ParameterError, match="nothing follows the end of a sequence"):
        mc.next_proba(["home", E])
    with pytest.raises(ParameterError, match="Item 'hme' was not seen in training; did you mean 'home'"):
        mc.score([["hme"]])


def test_absorbing_analysis_needs_first_order():
    mc = MarkovChain(order=2).fit(TINY)
    with pytest.raises(ParameterError, match="removal_effects needs a first-order chain"):
        mc.removal_effects("a")
    with pytest.raises(ParameterError, match="absorption_probabilities needs a first-order chain"):
        mc.absorption_probabilities()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"orders": ()}, "orders is empty"),
        ({"orders": (1, 5)}, "orders holds 5"),
        ({"orders": (1, 1)}, "orders has repeats"),
        ({"criterion": "bics"}, r"'criterion' got 'bics'; allowed: \['bic', 'aic', 'accuracy'\] did you mean 'bic'"),
        ({"test_size": 1.0}, r"'test_size' got 1.0; allowed: a number in \[0, 1\)"),
        ({"criterion": "accuracy", "test_size": 0}, "criterion='accuracy' needs held-out sequences"),
        ({"smoothing": -1}, "'smoothing' got -1"),
    ],
)
def test_select_order_errors(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        select_markov_order(TINY * 5, **kwargs)


def test_dense_matrix_guard(monkeypatch):
    mc, first = MarkovChain(order=3).fit(TINY), MarkovChain().fit(TINY)
    monkeypatch.setattr(markov, "_MAX_DENSE_CELLS", 5)
    with pytest.raises(SegkitError, match="use to_frame"):
        _ = mc.transition_matrix_
    with pytest.raises(SegkitError, match="4 x 4 cells"):
        first.removal_effects("a")
    assert len(mc.to_frame()) > 0 and len(first.to_frame()) > 0


def test_not_fitted():
    mc = MarkovChain()
    assert not hasattr(mc, "transition_matrix_")
    for call in (lambda: mc.transition_matrix_, lambda: mc.counts_, lambda: mc.predict_next(["a"]),
                 lambda: mc.next_proba(), lambda: mc.score(TINY), lambda: mc.to_frame(), lambda: mc.bic(),
                 lambda: mc.removal_effects("a"), lambda: mc.absorption_probabilities(),
                 lambda: plot_transition_heatmap(mc), lambda: plot_transition_flow(mc)):
        with pytest.raises(NotFittedError, match="MarkovChain instance is not fitted yet; call 'fit' first"):
            call()


def test_sklearn_contract():
    mc = MarkovChain(order=2, smoothing=0.5)
    assert mc.get_params() == {"order": 2, "smoothing": 0.5, "start_state": S, "exit_state": E}
    assert mc.fit(TINY) is mc
    assert not hasattr(clone(mc), "items_")
    bad = MarkovChain(order=7)  # __init__ stores, fit validates
    assert bad.order == 7


# ---------------------------------------------------------------------------------------------
# plots


def test_heatmap_returns_a_figure():
    mc = MarkovChain().fit(TINY + [["c", "a"]])
    fig = plot_transition_heatmap(mc)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [S, "a", "b", "c"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", E]
    top = plot_transition_heatmap(mc, top=1)
    assert [t.get_text() for t in top.axes[0].get_xticklabels()] == ["a", E]
    fig2 = plot_transition_heatmap(MarkovChain(order=2).fit(TINY), top=2)
    assert len(fig2.axes[0].get_yticklabels()) == 2
    _, own = plt.subplots()
    assert plot_transition_heatmap(mc, ax=own) is own.figure


def test_flow_returns_a_figure_with_one_arrow_per_strong_transition():
    mc = MarkovChain().fit(TINY + [["c", "a"]])
    fig = plot_transition_flow(mc, min_prob=0.3)
    assert isinstance(fig, Figure)
    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    p = mc.transition_matrix_.to_numpy()
    n_strong = sum(1 for i in range(len(p) - 1) for j in range(1, len(p)) if i != j and p[i, j] >= 0.3)
    assert len(arrows) == n_strong
    _, own = plt.subplots()
    assert plot_transition_flow(mc, top=2, ax=own) is own.figure
    assert isinstance(plot_transition_flow(MarkovChain(order=2).fit(TINY)), Figure)
    with pytest.raises(ParameterError, match="'min_prob' got 1.5"):
        plot_transition_flow(mc, min_prob=1.5)
    with pytest.raises(ParameterError, match="'top' got 0"):
        plot_transition_heatmap(mc, top=0)


def test_docstring_examples_run():
    result = doctest.testmod(markov, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10
