"""Tests of segkit.hmm: the batched categorical HMM against hmmlearn, selection and helpers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import CategoricalHMM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from segkit.errors import NotFittedError, ParameterError
from segkit.hmm import BatchedCategoricalHMM, name_states, select_n_states, state_occupancy

# ---------------------------------------------------------------------------------------------
# helpers


def _random_data(seed: int, n_seq: int = 60, max_len: int = 30, m: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len, size=n_seq)
    return rng.integers(0, m, size=(int(lengths.sum()), 1)), lengths


def _sample_hmm(startprob, transmat, emission, lengths, seed):
    """Sample states and symbols of a known HMM, sequence by sequence (fixed seed)."""
    rng = np.random.default_rng(seed)
    k, m = emission.shape
    xs, zs = [], []
    for n in lengths:
        z = np.empty(n, dtype=np.int64)
        z[0] = rng.choice(k, p=startprob)
        for t in range(1, n):
            z[t] = rng.choice(k, p=transmat[z[t - 1]])
        u = rng.random(n)
        x = (np.cumsum(emission[z], axis=1) < u[:, None]).sum(axis=1)
        xs.append(x)
        zs.append(z)
    return np.concatenate(xs)[:, None], np.asarray(lengths), np.concatenate(zs)


def _hmmlearn_with(model: BatchedCategoricalHMM) -> CategoricalHMM:
    ref = CategoricalHMM(model.n_components, implementation="scaling", n_features=model.n_features_)
    ref.startprob_, ref.transmat_, ref.emissionprob_ = model.startprob_, model.transmat_, model.emissionprob_
    return ref


TRUE_START = np.array([0.6, 0.3, 0.1])
TRUE_TRANS = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
TRUE_EMIT = np.array([
    [0.50, 0.30, 0.10, 0.04, 0.03, 0.03],
    [0.03, 0.07, 0.50, 0.30, 0.07, 0.03],
    [0.03, 0.03, 0.04, 0.10, 0.30, 0.50],
])


# ---------------------------------------------------------------------------------------------
# agreement with hmmlearn


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seqs=st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=12), min_size=1, max_size=15),
    k=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_history_and_matrices_match_hmmlearn_from_same_start(seqs, k, seed):
    X = np.concatenate([np.asarray(s) for s in seqs])[:, None]
    lengths = [len(s) for s in seqs]
    kw = dict(n_iter=6, tol=-np.inf, random_state=seed)
    fast = BatchedCategoricalHMM(k, **kw).fit(X, lengths)
    ref = BatchedCategoricalHMM(k, implementation="hmmlearn", **kw).fit(X, lengths)
    for name in ("startprob", "transmat", "emissionprob"):
        np.testing.assert_array_equal(fast.init_params_[name], ref.init_params_[name])
    np.testing.assert_allclose(fast.loglik_history_, ref.loglik_history_, rtol=1e-6, atol=1e-9)
    for attr in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(fast, attr), getattr(ref, attr), rtol=0, atol=1e-8)


def test_only_length_one_sequences_match_hmmlearn():
    X = np.array([[0], [1], [2], [1], [1]])
    kw = dict(n_iter=4, tol=-np.inf, random_state=2)
    fast = BatchedCategoricalHMM(2, **kw).fit(X, [1] * 5)
    ref = BatchedCategoricalHMM(2, implementation="hmmlearn", **kw).fit(X, [1] * 5)
    np.testing.assert_allclose(fast.loglik_history_, ref.loglik_history_, rtol=1e-12)
    np.testing.assert_array_equal(fast.transmat_, np.zeros((2, 2)))  # no transitions observed, as hmmlearn
    np.testing.assert_allclose(fast.emissionprob_, ref.emissionprob_, atol=1e-12)


def test_random_init_reproduces_hmmlearn_own_initialisation():
    X, lengths = _random_data(1)
    ours = BatchedCategoricalHMM(3, n_iter=12, tol=-np.inf, random_state=7).fit(X, lengths)
    theirs = CategoricalHMM(3, n_iter=12, tol=-np.inf, random_state=7, implementation="scaling").fit(X, lengths)
    np.testing.assert_allclose(ours.loglik_history_, theirs.monitor_.history, rtol=1e-12)
    np.testing.assert_allclose(ours.emissionprob_, theirs.emissionprob_, atol=1e-12)


def test_history_is_the_loglik_before_each_mstep():
    X, lengths = _random_data(2)
    model = BatchedCategoricalHMM(3, n_iter=5, tol=-np.inf).fit(X, lengths)
    at_start = BatchedCategoricalHMM(3)
    at_start.startprob_, at_start.transmat_, at_start.emissionprob_ = (
        model.init_params_[n] for n in ("startprob", "transmat", "emissionprob"))
    at_start.n_features_ = model.n_features_
    assert model.loglik_history_[0] == pytest.approx(at_start.score(X, lengths), rel=1e-12)
    # the fitted matrices are one M-step ahead of the last entry
    assert model.score(X, lengths) > model.loglik_history_[-1]
    assert np.all(np.diff(model.loglik_history_) > -1e-9)
    assert model.n_iter_ == 5 and not model.converged_


def test_tol_stops_like_hmmlearn():
    X, lengths = _random_data(3, n_seq=30)
    fast = BatchedCategoricalHMM(2, n_iter=500, tol=1e-3, random_state=1).fit(X, lengths)
    ref = BatchedCategoricalHMM(2, n_iter=500, tol=1e-3, random_state=1, implementation="hmmlearn").fit(X, lengths)
    assert fast.converged_ and ref.converged_
    assert fast.n_iter_ == ref.n_iter_ < 500
    assert fast.loglik_history_[-1] - fast.loglik_history_[-2] < 1e-3


def test_score_posteriors_and_viterbi_match_hmmlearn():
    X, lengths = _random_data(4, n_seq=80)
    model = BatchedCategoricalHMM(4, n_iter=8, random_state=5).fit(X, lengths)
    ref = _hmmlearn_with(model)
    assert model.score(X, lengths) == pytest.approx(ref.score(X, lengths), rel=1e-12)
    ll, post = model.score_samples(X, lengths)
    ref_ll, ref_post = ref.score_samples(X, lengths)
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(post, ref_post, atol=1e-10)
    logp, states = model.decode(X, lengths)
    ref_logp, ref_states = ref.decode(X, lengths)
    assert logp == pytest.approx(ref_logp, rel=1e-12)
    np.testing.assert_array_equal(states, ref_states)
    np.testing.assert_array_equal(model.predict(X, lengths), ref.predict(X, lengths))


def test_bic_aic_match_hmmlearn():
    X, lengths = _random_data(5)
    model = BatchedCategoricalHMM(3, n_iter=5).fit(X, lengths)
    ref = _hmmlearn_with(model)
    assert model.n_parameters() == (3 - 1) + 3 * 2 + 3 * (5 - 1)
    assert model.bic(X, lengths) == pytest.approx(ref.bic(X, lengths), rel=1e-12)
    assert model.aic(X, lengths) == pytest.approx(ref.aic(X, lengths), rel=1e-12)


def test_hmmlearn_implementation_delegates_inference():
    X, lengths = _random_data(6, n_seq=40)
    fast = BatchedCategoricalHMM(3, n_iter=5, tol=-np.inf).fit(X, lengths)
    ref = BatchedCategoricalHMM(3, n_iter=5, tol=-np.inf, implementation="hmmlearn").fit(X, lengths)
    assert ref.score(X, lengths) == pytest.approx(fast.score(X, lengths), rel=1e-10)
    np.testing.assert_allclose(ref.score_sequences(X, lengths), fast.score_sequences(X, lengths), rtol=1e-10)
    np.testing.assert_allclose(ref.predict_proba(X, lengths), fast.predict_proba(X, lengths), atol=1e-8)
    assert ref.predict(X, lengths).shape == (X.shape[0],)


def test_zero_probability_sequence_scores_minus_inf():
    model = BatchedCategoricalHMM(2, n_features=3, emissionprob_init=[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], n_iter=3)
    model.fit([[0], [1], [1], [0]], lengths=[2, 2])
    lls = model.score_sequences([[0], [2], [1]], lengths=[1, 1, 1])
    assert np.isneginf(lls[1]) and np.isfinite(lls[[0, 2]]).all()
    post = model.predict_proba([[0], [2]], lengths=[1, 1])
    assert np.isnan(post[1]).all() and np.isfinite(post[0]).all()


def test_fit_raises_when_start_gives_a_sequence_zero_probability():
    model = BatchedCategoricalHMM(2, emissionprob_init=[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    with pytest.raises(ParameterError, match="sequence 1 has zero probability"):
        model.fit([[0], [2]], lengths=[1, 1])


# ---------------------------------------------------------------------------------------------
# estimator contract and options


def test_init_only_stores_arguments_and_clones():
    model = BatchedCategoricalHMM(0, init="nonsense", n_iter=-3)  # validated in fit, not here
    assert model.get_params()["n_components"] == 0
    assert clone(BatchedCategoricalHMM(3, tol=1e-3)).get_params()["tol"] == 1e-3


def test_fit_returns_self_and_does_not_mutate_input():
    X, lengths = _random_data(7)
    X0, l0 = X.copy(), lengths.copy()
    model = BatchedCategoricalHMM(2)
    assert model.fit(X, lengths) is model
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(lengths, l0)
    assert model.n_features_ == 5 and model.n_sequences_ == len(lengths)


def test_fit_sequences_equals_fit():
    seqs = [np.array([0, 1, 2]), np.array([2]), np.array([1, 1, 0, 2])]
    a = BatchedCategoricalHMM(2, n_iter=4, tol=-np.inf).fit_sequences(seqs)
    b = BatchedCategoricalHMM(2, n_iter=4, tol=-np.inf).fit(np.concatenate(seqs)[:, None], [3, 1, 4])
    np.testing.assert_array_equal(a.loglik_history_, b.loglik_history_)
    np.testing.assert_array_equal(a.emissionprob_, b.emissionprob_)


def test_one_dimensional_x_and_no_lengths_accepted():
    x = np.array([0, 1, 1, 0, 1, 2])
    a = BatchedCategoricalHMM(2, n_iter=3).fit(x)
    b = BatchedCategoricalHMM(2, n_iter=3).fit(x[:, None], [6])
    np.testing.assert_array_equal(a.loglik_history_, b.loglik_history_)


def test_explicit_starting_matrices_are_used():
    start, trans = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]])
    emit = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    model = BatchedCategoricalHMM(2, startprob_init=start, transmat_init=trans, emissionprob_init=emit, n_iter=2)
    model.fit([[0], [0], [2], [2], [1]], lengths=[3, 2])
    np.testing.assert_array_equal(model.init_params_["transmat"], trans)
    assert model.n_features_ == 3


def test_zero_transitions_stay_zero_as_in_hmmlearn():
    trans = np.array([[1.0, 0.0], [0.3, 0.7]])
    X, lengths = _random_data(8, m=3)
    model = BatchedCategoricalHMM(2, transmat_init=trans, n_iter=5).fit(X, lengths)
    assert model.transmat_[0, 1] == 0.0


def test_n_init_keeps_the_best_start():
    X, lengths = _random_data(9, n_seq=80)
    best = BatchedCategoricalHMM(3, n_iter=15, n_init=4, random_state=0).fit(X, lengths)
    singles = [BatchedCategoricalHMM(3, n_iter=15, random_state=r).fit(X, lengths).loglik_history_[-1] for r in range(4)]
    assert best.loglik_history_[-1] == pytest.approx(max(singles), rel=1e-12)


def test_kmeans_init_gives_valid_start_and_fits():
    X, lengths, _ = _sample_hmm(TRUE_START, TRUE_TRANS, TRUE_EMIT, [20] * 50, seed=1)
    model = BatchedCategoricalHMM(3, init="kmeans", n_iter=20).fit(X, lengths)
    for name, arr in model.init_params_.items():
        assert (arr > 0).all() and np.allclose(arr.sum(axis=-1), 1), name
    assert np.all(np.diff(model.loglik_history_) > -1e-9)


def test_unfitted_use_raises_not_fitted():
    model = BatchedCategoricalHMM(2)
    for call in (model.predict, model.score, model.predict_proba, model.score_samples, model.bic, model.aic):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call([[0], [1]])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        name_states(model, ["a", "b"])


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_components": 0}, "'n_components' got 0; allowed: an integer >= 1"),
        ({"n_iter": 0}, "'n_iter' got 0"),
        ({"n_init": 0}, "'n_init' got 0"),
        ({"tol": float("nan")}, "'tol' got nan"),
        ({"init": "kmean"}, "did you mean 'kmeans'"),
        ({"implementation": "hmmlern"}, "did you mean 'hmmlearn'"),
        ({"n_features": 0}, "'n_features' got 0"),
        ({"random_state": "seed"}, "'random_state' got 'seed'"),
        ({"startprob_init": [0.5, 0.6]}, "startprob_init must sum to 1"),
        ({"transmat_init": [[1.0]]}, r"transmat_init must have shape \(2, 2\)"),
        ({"emissionprob_init": [[0.5, 0.5], [1.2, -0.2]]}, "finite non-negative"),
        ({"n_features": 3, "emissionprob_init": [[0.5, 0.5], [0.5, 0.5]]}, "has 2 columns but n_features=3"),
        ({"n_init": 2, "startprob_init": [0.5, 0.5], "transmat_init": [[0.5, 0.5], [0.5, 0.5]],
          "emissionprob_init": [[0.5, 0.5], [0.5, 0.5]]}, "n_init=2 restarts"),
        ({"n_components": 5, "init": "kmeans"}, "needs n_components <= n_features"),
    ],
)
def test_bad_parameters_raise(params, match):
    params = {"n_components": 2, **params}
    with pytest.raises(ParameterError, match=match):
        BatchedCategoricalHMM(**params).fit([[0], [1], [1]], lengths=[3])


@pytest.mark.parametrize(
    ("X", "lengths", "match"),
    [
        (np.empty((0, 1), dtype=int), None, "X is empty"),
        ([[0], [-1]], None, "negative symbol -1"),
        ([[0.0], [1.0]], None, "integer symbol codes.*'float64'"),
        (np.zeros((3, 2), dtype=int), None, r"shape \(n_samples, 1\).*\(3, 2\)"),
        ([[0], [1], [1]], [1, 1], "lengths sum to 2 but X has 3 samples"),
        ([[0], [1], [1]], [3, 0], r"lengths\[1\] is 0"),
        ([[0], [1], [1]], [1.5, 1.5], "1-D sequence of integers"),
        ([[0], [1], [1]], [], "1-D sequence of integers"),
    ],
)
def test_bad_data_raises(X, lengths, match):
    with pytest.raises(ParameterError, match=match):
        BatchedCategoricalHMM(2).fit(X, lengths)


def test_symbol_outside_n_features_raises():
    with pytest.raises(ParameterError, match="X holds symbol 3 but n_features=3 allows only 0..2"):
        BatchedCategoricalHMM(2, n_features=3).fit([[0], [3]])
    model = BatchedCategoricalHMM(2).fit([[0], [1], [2]])
    with pytest.raises(ParameterError, match="X holds symbol 5 but n_features=3"):
        model.predict([[5]])


def test_fit_sequences_bad_input():
    with pytest.raises(ParameterError, match="sequences is empty"):
        BatchedCategoricalHMM(2).fit_sequences([])
    with pytest.raises(ParameterError, match=r"sequences\[1\] is empty"):
        BatchedCategoricalHMM(2).fit_sequences([[0, 1], []])
    with pytest.raises(ParameterError, match="list of 1-D integer arrays"):
        BatchedCategoricalHMM(2).fit_sequences(np.array([0, 1, 2]))


# ---------------------------------------------------------------------------------------------
# model selection and helpers


def test_bic_selects_the_true_number_of_states():
    X, lengths, _ = _sample_hmm(TRUE_START, TRUE_TRANS, TRUE_EMIT, [30] * 200, seed=11)
    table, model = select_n_states(X, lengths, candidates=range(1, 6), criterion="bic", random_state=0,
                                   n_iter=300, tol=1e-6)
    assert list(table.columns) == ["n_states", "loglik", "n_parameters", "bic", "aic", "n_iter", "converged", "chosen"]
    assert model.n_components == 3
    assert table.loc[table["chosen"], "n_states"].tolist() == [3]
    assert table["loglik"].is_monotonic_increasing  # k-means starts: more states never fit worse here
    # the recovered emissions match the true ones up to a permutation of states
    order = [int(np.argmin([np.abs(model.emissionprob_[j] - TRUE_EMIT[i]).sum() for j in range(3)])) for i in range(3)]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(model.emissionprob_[order], TRUE_EMIT, atol=0.05)


def test_select_n_states_rejects_bad_arguments():
    X = np.array([[0], [1], [1], [0]])
    with pytest.raises(ParameterError, match="did you mean 'bic'"):
        select_n_states(X, criterion="bics")
    with pytest.raises(ParameterError, match="candidates is empty"):
        select_n_states(X, candidates=[])
    with pytest.raises(ParameterError, match="sets \\['n_components'\\] itself"):
        select_n_states(X, n_components=3)
    with pytest.raises(ParameterError, match="'n_iters'"):
        select_n_states(X, n_iters=3)


def test_name_states_uses_top_emissions():
    emit = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    model = BatchedCategoricalHMM(2, emissionprob_init=emit, n_iter=1)
    model.fit([[0], [1], [2]])
    model.emissionprob_ = emit  # name the known matrix
    names = ["cart_view", "add_to_cart", "checkout_start"]
    assert name_states(model, names, top=2) == ["add_to_cart / checkout_start", "cart_view / checkout_start"]
    assert name_states(model, names) == ["add_to_cart / checkout_start / cart_view",
                                         "cart_view / checkout_start / add_to_cart"]
    with pytest.raises(ParameterError, match="feature_names has 2 names but the model has n_features_=3"):
        name_states(model, names[:2])
    with pytest.raises(ParameterError, match="'top' got 0"):
        name_states(model, names, top=0)


def test_state_occupancy_per_sequence_and_group():
    states = np.array([0, 0, 1, 2, 2, 2])
    by_seq = state_occupancy(states, lengths=[2, 4], n_components=4)
    assert by_seq.index.name == "sequence"
    assert by_seq.columns.tolist() == ["n_events", "state_0", "state_1", "state_2", "state_3"]
    np.testing.assert_allclose(by_seq.iloc[1, 1:].to_numpy(), [0, 0.25, 0.75, 0])
    by_user = state_occupancy(states, groups=["b", "a", "a", "b", "b", "b"])
    assert by_user.index.tolist() == ["a", "b"]
    assert by_user.loc["b", "n_events"] == 4
    np.testing.assert_allclose(by_user.loc["b", ["state_0", "state_2"]].to_numpy(), [0.25, 0.75])
    assert isinstance(state_occupancy(states), pd.DataFrame)


def test_state_occupancy_bad_input():
    with pytest.raises(ParameterError, match="either lengths or groups"):
        state_occupancy([0, 1], lengths=[2], groups=["a", "a"])
    with pytest.raises(ParameterError, match="one label per state"):
        state_occupancy([0, 1], groups=["a"])
    with pytest.raises(ParameterError, match="state 2 but n_components=2"):
        state_occupancy([0, 2], n_components=2)
    with pytest.raises(ParameterError, match="lengths sum to 3"):
        state_occupancy([0, 1], lengths=[3])
