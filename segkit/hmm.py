"""Hidden Markov models of event sequences: a batched categorical HMM and helpers around it.

:class:`BatchedCategoricalHMM` fits a discrete-emission HMM by Baum–Welch EM to many short
sequences at once (one sequence per session, events integer-coded ``0 .. n_features - 1``).
:func:`select_n_states` fits one model per candidate number of states and compares them by BIC
or AIC, :func:`name_states` labels each state by the events it emits most, and
:func:`state_occupancy` turns decoded states into the share of time each sequence (or user)
spends in each state.

How the batched fit works
-------------------------
The data are one flat array of symbols plus sequence offsets. One compiled pass (numba,
``njit(cache=True)``, single-threaded) walks every sequence in turn and runs the scaled
forward–backward recursions in small per-sequence buffers, accumulating the expected start,
transition and emission counts of all sequences into three small matrices; the M-step
normalises them. Nothing proportional to the data is allocated per iteration beyond a lattice
the size of the longest sequence, and no Python runs per sequence, which is where
``hmmlearn`` spends its time on many short sequences (about 25 s for 100k sessions and ten
iterations, against 1–2 s here; see ``benchmarks/bench_hmm.py``).

Agreement with hmmlearn
-----------------------
``implementation="batched"`` reproduces ``hmmlearn.hmm.CategoricalHMM(implementation="scaling",
params="ste", init_params="")`` step for step: the same scaled recursions (underflow threshold
``1e-300``), the same M-step (a start probability or transition that is exactly zero stays zero;
a row with no expected counts stays all-zero), the same stopping rule (stop after the iteration
whose log-likelihood gain is below ``tol``, the M-step of that iteration included) and the same
bookkeeping: ``loglik_history_[k]`` is the log-likelihood computed in the E-step of iteration
``k``, that is under the parameters *before* that iteration's M-step (hmmlearn's
``monitor_.history``). The fitted matrices are therefore one M-step ahead of the last history
entry; :meth:`BatchedCategoricalHMM.score` gives the log-likelihood of the fitted parameters.
Viterbi decoding breaks ties the way hmmlearn does. ``init="random"`` draws the starting
matrices exactly as hmmlearn's own random initialisation does for the same integer
``random_state``, so both libraries start from the same point without passing matrices around.
``implementation="hmmlearn"`` runs hmmlearn itself from the same starting matrices, as the
reference.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import pandas as pd
from numba import njit
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .errors import NotFittedError, ParameterError

__all__ = [
    "BatchedCategoricalHMM",
    "select_n_states",
    "name_states",
    "state_occupancy",
]

#: hmmlearn's scaled forward pass fails when a step's total probability drops below this.
_MIN_SUM = 1e-300
_INITS = ("random", "kmeans")
_IMPLEMENTATIONS = ("batched", "hmmlearn")
_CRITERIA = ("bic", "aic")


# ---------------------------------------------------------------------------------------------
# compiled kernels (x: flat int64 symbols, offsets: int64 of length n_sequences + 1,
# emit_t: emission probabilities transposed to (n_features, n_components))


@njit(cache=True)
def _max_length(offsets):
    longest = 0
    for s in range(offsets.shape[0] - 1):
        n = offsets[s + 1] - offsets[s]
        if n > longest:
            longest = n
    return longest


@njit(cache=True)
def _sequential_sum(values):
    """Left-to-right sum (hmmlearn adds sequence log-likelihoods one by one)."""
    total = 0.0
    for v in values:
        total += v
    return total


@njit(cache=True)
def _forward(x, a, n, startprob, transmat, emit_t, fwd, scale):
    """Scaled forward pass of one sequence into ``fwd``/``scale``; log-likelihood, or -inf on underflow."""
    k = startprob.shape[0]
    total = 0.0
    sym = x[a]
    for i in range(k):
        v = startprob[i] * emit_t[sym, i]
        fwd[0, i] = v
        total += v
    if not total >= _MIN_SUM:
        return -np.inf
    c = 1.0 / total
    scale[0] = c
    loglik = -math.log(c)
    for i in range(k):
        fwd[0, i] *= c
    for t in range(1, n):
        sym = x[a + t]
        total = 0.0
        for j in range(k):
            acc = 0.0
            for i in range(k):
                acc += fwd[t - 1, i] * transmat[i, j]
            acc *= emit_t[sym, j]
            fwd[t, j] = acc
            total += acc
        if not total >= _MIN_SUM:
            return -np.inf
        c = 1.0 / total
        scale[t] = c
        loglik -= math.log(c)
        for j in range(k):
            fwd[t, j] *= c
    return loglik


@njit(cache=True)
def _estep(x, offsets, startprob, transmat, emit_t):
    """Expected counts of all sequences under the current parameters (one E-step).

    Returns (total log-likelihood, start counts (k,), transition counts (k, k), emission counts
    transposed (m, k), index of the first sequence with zero probability or -1).
    """
    k = startprob.shape[0]
    m = emit_t.shape[0]
    n_seq = offsets.shape[0] - 1
    longest = _max_length(offsets)
    fwd = np.empty((longest, k))
    scale = np.empty(longest)
    bnext = np.empty(k)
    bcur = np.empty(k)
    tmp = np.empty(k)
    gamma = np.empty(k)
    start = np.zeros(k)
    trans = np.zeros((k, k))
    obs_t = np.zeros((m, k))
    xi = np.zeros((k, k))
    total_ll = 0.0
    for s in range(n_seq):
        a = offsets[s]
        n = offsets[s + 1] - a
        ll = _forward(x, a, n, startprob, transmat, emit_t, fwd, scale)
        if ll == -np.inf:
            return -np.inf, start, trans, obs_t, s
        total_ll += ll
        # last frame: beta = scale, posterior = normalised fwd * beta
        for i in range(k):
            bnext[i] = scale[n - 1]
        norm = 0.0
        for i in range(k):
            gamma[i] = fwd[n - 1, i] * bnext[i]
            norm += gamma[i]
        if norm == 0.0:
            norm = 1.0
        sym = x[a + n - 1]
        for i in range(k):
            obs_t[sym, i] += gamma[i] / norm
        if n > 1:
            for i in range(k):
                for j in range(k):
                    xi[i, j] = 0.0
        for t in range(n - 2, -1, -1):
            nsym = x[a + t + 1]
            for j in range(k):
                tmp[j] = emit_t[nsym, j] * bnext[j]
            norm = 0.0
            for i in range(k):
                acc = 0.0
                f = fwd[t, i]
                for j in range(k):
                    w = transmat[i, j] * tmp[j]
                    acc += w
                    xi[i, j] += f * w
                acc *= scale[t]
                bcur[i] = acc
                gamma[i] = f * acc
                norm += gamma[i]
            if norm == 0.0:
                norm = 1.0
            sym = x[a + t]
            for i in range(k):
                obs_t[sym, i] += gamma[i] / norm
            for i in range(k):
                bnext[i] = bcur[i]
        # gamma now holds frame 0 (for n == 1 it was set above)
        for i in range(k):
            start[i] += gamma[i] / norm
        if n > 1:
            for i in range(k):
                for j in range(k):
                    trans[i, j] += xi[i, j]
    return total_ll, start, trans, obs_t, -1


@njit(cache=True)
def _sequence_logliks(x, offsets, startprob, transmat, emit_t):
    """Log-likelihood of each sequence (-inf where it has zero probability)."""
    k = startprob.shape[0]
    n_seq = offsets.shape[0] - 1
    longest = _max_length(offsets)
    fwd = np.empty((longest, k))
    scale = np.empty(longest)
    out = np.empty(n_seq)
    for s in range(n_seq):
        a = offsets[s]
        out[s] = _forward(x, a, offsets[s + 1] - a, startprob, transmat, emit_t, fwd, scale)
    return out


@njit(cache=True)
def _posteriors(x, offsets, startprob, transmat, emit_t):
    """Per-sequence log-likelihoods and per-event state posteriors (NaN rows where impossible)."""
    k = startprob.shape[0]
    n_seq = offsets.shape[0] - 1
    longest = _max_length(offsets)
    fwd = np.empty((longest, k))
    scale = np.empty(longest)
    bnext = np.empty(k)
    bcur = np.empty(k)
    tmp = np.empty(k)
    post = np.empty((x.shape[0], k))
    lls = np.empty(n_seq)
    for s in range(n_seq):
        a = offsets[s]
        n = offsets[s + 1] - a
        ll = _forward(x, a, n, startprob, transmat, emit_t, fwd, scale)
        lls[s] = ll
        if ll == -np.inf:
            for t in range(n):
                for i in range(k):
                    post[a + t, i] = np.nan
            continue
        for i in range(k):
            bnext[i] = scale[n - 1]
        norm = 0.0
        for i in range(k):
            post[a + n - 1, i] = fwd[n - 1, i] * bnext[i]
            norm += post[a + n - 1, i]
        if norm == 0.0:
            norm = 1.0
        for i in range(k):
            post[a + n - 1, i] /= norm
        for t in range(n - 2, -1, -1):
            nsym = x[a + t + 1]
            for j in range(k):
                tmp[j] = emit_t[nsym, j] * bnext[j]
            norm = 0.0
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += transmat[i, j] * tmp[j]
                acc *= scale[t]
                bcur[i] = acc
                post[a + t, i] = fwd[t, i] * acc
                norm += post[a + t, i]
            if norm == 0.0:
                norm = 1.0
            for i in range(k):
                post[a + t, i] /= norm
                bnext[i] = bcur[i]
    return lls, post


@njit(cache=True)
def _viterbi(x, offsets, log_start, log_trans, log_emit_t):
    """Most likely state path of every sequence and its log-probability (hmmlearn's tie-breaking)."""
    k = log_start.shape[0]
    n_seq = offsets.shape[0] - 1
    longest = _max_length(offsets)
    lat = np.empty((longest, k))
    states = np.empty(x.shape[0], dtype=np.int64)
    logps = np.empty(n_seq)
    for s in range(n_seq):
        a = offsets[s]
        n = offsets[s + 1] - a
        sym = x[a]
        for i in range(k):
            lat[0, i] = log_start[i] + log_emit_t[sym, i]
        for t in range(1, n):
            sym = x[a + t]
            for i in range(k):
                best = -np.inf
                for j in range(k):
                    v = lat[t - 1, j] + log_trans[j, i]
                    if v > best:
                        best = v
                lat[t, i] = best + log_emit_t[sym, i]
        # last frame: first maximum (std::max_element)
        prev = 0
        best = lat[n - 1, 0]
        for i in range(1, k):
            if lat[n - 1, i] > best:
                best = lat[n - 1, i]
                prev = i
        logps[s] = best
        states[a + n - 1] = prev
        # traceback: the last maximum (std::max over (value, index) pairs)
        for t in range(n - 2, -1, -1):
            best = -np.inf
            arg = 0
            for i in range(k):
                v = lat[t, i] + log_trans[i, prev]
                if v >= best:
                    best = v
                    arg = i
            states[a + t] = arg
            prev = arg
    return logps, states


# ---------------------------------------------------------------------------------------------
# validation helpers


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lo:
        raise ParameterError(name, value, f"an integer >= {lo}")
    return int(value)


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ParameterError(name, value, list(allowed))
    return value


def _as_sequences(X: Any, lengths: Any, n_features: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``X``/``lengths``; return flat int64 symbols and int64 offsets (n_sequences + 1)."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ParameterError("X", None, message=f"X could not be read as an array of symbols: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif arr.ndim != 1:
        raise ParameterError("X", arr.shape, message=f"X must have shape (n_samples, 1) or (n_samples,); got shape {arr.shape!r}")
    if arr.size == 0:
        raise ParameterError("X", arr.shape, message="X is empty; an HMM needs at least one event")
    if arr.dtype.kind not in "iu":
        raise ParameterError(
            "X", str(arr.dtype),
            message=f"X must hold integer symbol codes 0..n_features-1; got dtype {str(arr.dtype)!r} "
            "(integer-code event names first, e.g. with pandas.factorize)",
        )
    x = np.ascontiguousarray(arr, dtype=np.int64)
    lo, hi = int(x.min()), int(x.max())
    if lo < 0:
        raise ParameterError("X", lo, message=f"X holds negative symbol {lo!r}; symbols must be integer codes 0..n_features-1")
    if n_features is not None and hi >= n_features:
        raise ParameterError(
            "X", hi, message=f"X holds symbol {hi!r} but n_features={n_features!r} allows only 0..{n_features - 1}"
        )
    if lengths is None:
        lens = np.array([x.size], dtype=np.int64)
    else:
        lens_arr = np.asarray(lengths)
        if lens_arr.ndim != 1 or lens_arr.size == 0 or (lens_arr.dtype.kind not in "iu"):
            got = (f"dtype {str(lens_arr.dtype)!r}" if lens_arr.ndim == 1 and lens_arr.size
                   else f"shape {lens_arr.shape!r}")
            raise ParameterError(
                "lengths", lengths if lens_arr.size <= 8 else f"array of shape {lens_arr.shape}",
                message=f"lengths must be a non-empty 1-D sequence of integers; got {got}",
            )
        lens = lens_arr.astype(np.int64)
        if lens.min() < 1:
            bad = int(np.flatnonzero(lens < 1)[0])
            raise ParameterError(
                "lengths", int(lens[bad]), message=f"lengths[{bad}] is {int(lens[bad])!r}; every sequence needs at least one event"
            )
        total = int(lens.sum())
        if total != x.size:
            raise ParameterError(
                "lengths", total, message=f"lengths sum to {total:,} but X has {x.size:,} samples; they must be equal"
            )
    offsets = np.zeros(lens.size + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return x, offsets


def _pack(sequences: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a list of 1-D integer sequences into ``(X, lengths)``."""
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        raise ParameterError(
            "sequences", f"array of shape {sequences.shape}",
            message="sequences must be a list of 1-D integer arrays (one per sequence); for one flat array "
            "use fit(X, lengths)",
        )
    parts = []
    for i, seq in enumerate(sequences):
        a = np.asarray(seq)
        if a.ndim != 1:
            raise ParameterError(f"sequences[{i}]", a.shape, message=f"sequences[{i}] must be 1-D; got shape {a.shape!r}")
        if a.size == 0:
            raise ParameterError(f"sequences[{i}]", [], message=f"sequences[{i}] is empty; every sequence needs at least one event")
        if a.dtype.kind not in "iu":
            raise ParameterError(
                f"sequences[{i}]", str(a.dtype), message=f"sequences[{i}] must hold integer symbol codes; got dtype {str(a.dtype)!r}"
            )
        parts.append(a.astype(np.int64, copy=False))
    if not parts:
        raise ParameterError("sequences", [], message="sequences is empty; an HMM needs at least one sequence")
    return np.concatenate(parts)[:, None], np.array([p.size for p in parts], dtype=np.int64)


def _check_stochastic(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.array(value, dtype=float)
    if arr.shape != shape:
        raise ParameterError(name, arr.shape, message=f"{name} must have shape {shape!r}; got {arr.shape!r}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ParameterError(name, None, message=f"{name} must hold finite non-negative probabilities")
    sums = arr.sum(axis=-1)
    if not np.allclose(sums, 1.0):
        raise ParameterError(
            name, np.round(sums, 6).tolist(),
            message=f"{name} must sum to 1 along its last axis; got sums {np.round(sums, 6).tolist()!r}",
        )
    return arr


def _normalize_rows(a: np.ndarray) -> np.ndarray:
    """hmmlearn's ``normalize(a, axis=-1)``: rows that sum to zero stay zero."""
    s = a.sum(axis=-1, keepdims=True)
    s[s == 0] = 1.0
    return a / s


# ---------------------------------------------------------------------------------------------
# the estimator


class BatchedCategoricalHMM(BaseEstimator):
    """Categorical hidden Markov model fitted by Baum–Welch EM over many short sequences.

    Parameters
    ----------
    n_components : int, default=4
        Number of hidden states.
    n_iter : int, default=10
        Maximum number of EM iterations.
    tol : float, default=1e-4
        Stop after the iteration whose log-likelihood gain is below ``tol`` (hmmlearn's rule).
        Use ``-numpy.inf`` to always run ``n_iter`` iterations.
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the random starting matrices (and of k-means with ``init="kmeans"``). Restart
        ``r`` of ``n_init`` uses ``random_state + r`` when an integer is given.
    init : {"random", "kmeans"}, default="random"
        How to draw starting matrices that are not given explicitly. ``"random"`` draws them as
        ``hmmlearn.hmm.CategoricalHMM`` does for the same ``random_state`` (Dirichlet(1/n)
        start and transition rows, uniform emission weights). ``"kmeans"`` groups the *symbols*
        by k-means on their next- and previous-symbol profiles, one group per state, and starts
        from the counts of those groups (mixed 80/20 with uniform start and transition
        probabilities and with the overall symbol frequencies); it needs
        ``n_components <= n_features``.
    n_init : int, default=1
        Number of starts; the fit whose last recorded log-likelihood is highest is kept.
        Needs something random to restart: an error when all three ``*_init`` matrices are given.
    implementation : {"batched", "hmmlearn"}, default="batched"
        ``"batched"`` runs the compiled batched EM and decoding; ``"hmmlearn"`` delegates fitting,
        scoring and decoding to ``hmmlearn.hmm.CategoricalHMM(implementation="scaling")`` with
        the same starting matrices (the reference).
    n_features : int or None, default=None
        Number of distinct symbols. ``None`` uses ``emissionprob_init.shape[1]`` when given, else
        the largest symbol in the training data plus one.
    startprob_init : array-like of shape (n_components,), default=None
        Explicit starting start probabilities (overrides the ``init`` draw for this matrix).
    transmat_init : array-like of shape (n_components, n_components), default=None
        Explicit starting transition matrix, rows summing to 1.
    emissionprob_init : array-like of shape (n_components, n_features), default=None
        Explicit starting emission matrix, rows summing to 1.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Fitted start probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Fitted transition matrix (a state never left in the data keeps an all-zero row, as in hmmlearn).
    emissionprob_ : ndarray of shape (n_components, n_features)
        Fitted emission probabilities.
    init_params_ : dict of str to ndarray
        The starting ``startprob``, ``transmat`` and ``emissionprob`` of the kept fit.
    loglik_history_ : ndarray of shape (n_iter_,)
        Log-likelihood of the training data computed in each iteration's E-step, i.e. under the
        parameters *before* that iteration's M-step (hmmlearn's ``monitor_.history``).
    n_iter_ : int
        Number of EM iterations run.
    converged_ : bool
        Whether EM stopped because the gain fell below ``tol`` (not merely at ``n_iter``).
    n_features_ : int
        Number of symbols.
    n_sequences_ : int
        Number of training sequences.

    See Also
    --------
    select_n_states : Choose ``n_components`` by BIC or AIC.
    name_states : Label states by their most emitted events.
    state_occupancy : Share of events in each state per sequence or user.

    Notes
    -----
    Fitting, scoring and decoding reproduce hmmlearn's scaled implementation; see the module
    docstring for the exact correspondence. A sequence containing a symbol with zero emission
    probability in every reachable state has zero probability: :meth:`score` returns ``-inf``,
    :meth:`predict_proba` gives NaN rows for it, and :meth:`fit` raises if that happens with the
    starting matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from segkit.hmm import BatchedCategoricalHMM
    >>> seqs = [np.array([0, 0, 1, 2, 2]), np.array([2, 2, 1]), np.array([0, 1])]
    >>> model = BatchedCategoricalHMM(n_components=2, n_iter=20, random_state=0).fit_sequences(seqs)
    >>> model.transmat_.shape, model.emissionprob_.shape
    ((2, 2), (2, 3))
    >>> bool(np.all(np.diff(model.loglik_history_) > -1e-9))
    True
    >>> model.predict(np.array([[0], [0], [2]]), lengths=[3]).shape
    (3,)
    """

    def __init__(
        self,
        n_components: int = 4,
        *,
        n_iter: int = 10,
        tol: float = 1e-4,
        random_state: int | np.random.RandomState | None = 0,
        init: Literal["random", "kmeans"] = "random",
        n_init: int = 1,
        implementation: Literal["batched", "hmmlearn"] = "batched",
        n_features: int | None = None,
        startprob_init: Any = None,
        transmat_init: Any = None,
        emissionprob_init: Any = None,
    ) -> None:
        self.n_components = n_components
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state
        self.init = init
        self.n_init = n_init
        self.implementation = implementation
        self.n_features = n_features
        self.startprob_init = startprob_init
        self.transmat_init = transmat_init
        self.emissionprob_init = emissionprob_init

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: Any, lengths: Any = None) -> BatchedCategoricalHMM:
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            All sequences' symbols, concatenated.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence; must sum to ``n_samples``. ``None`` means one sequence.

        Returns
        -------
        self : BatchedCategoricalHMM
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0], [1], [1], [0], [2]])
        >>> BatchedCategoricalHMM(n_components=2).fit(X, lengths=[3, 2]).n_sequences_
        2
        """
        k = _check_int("n_components", self.n_components, 1)
        n_iter = _check_int("n_iter", self.n_iter, 1)
        n_init = _check_int("n_init", self.n_init, 1)
        if isinstance(self.tol, bool) or not isinstance(self.tol, Real) or math.isnan(self.tol):
            raise ParameterError("tol", self.tol, "a real number (use -inf to always run n_iter iterations)")
        tol = float(self.tol)
        init = _check_choice("init", self.init, _INITS)
        implementation = _check_choice("implementation", self.implementation, _IMPLEMENTATIONS)
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.RandomState) or (isinstance(rs, Integral) and not isinstance(rs, bool))):
            raise ParameterError("random_state", rs, "an int, a numpy.random.RandomState or None")
        m = self._resolve_n_features()
        x, offsets = _as_sequences(X, lengths, m)
        if m is None:
            m = int(x.max()) + 1
        shapes = {"startprob": (k,), "transmat": (k, k), "emissionprob": (k, m)}
        given = {}
        for name, shape in shapes.items():
            value = getattr(self, f"{name}_init")
            given[name] = None if value is None else _check_stochastic(f"{name}_init", value, shape)
        if n_init > 1 and all(v is not None for v in given.values()):
            raise ParameterError(
                "n_init", n_init,
                message=f"n_init={n_init!r} restarts from random starting matrices, but startprob_init, transmat_init "
                "and emissionprob_init are all given; use n_init=1",
            )
        if init == "kmeans" and k > m and given["emissionprob"] is None:
            raise ParameterError(
                "n_components", k, message=f"init='kmeans' groups symbols into states and needs n_components <= n_features; "
                f"got n_components={k!r} with {m!r} symbols (use init='random')",
            )

        best: dict[str, Any] | None = None
        for r in range(n_init):
            seed = rs + r if isinstance(rs, Integral) else rs
            start = self._starting_matrices(init, k, m, seed, x, offsets, given)
            fitted = self._fit_once(implementation, x, offsets, start, n_iter, tol)
            if best is None or fitted["history"][-1] > best["history"][-1]:
                best = fitted
                best["init"] = start
        assert best is not None
        self.startprob_, self.transmat_, self.emissionprob_ = best["startprob"], best["transmat"], best["emissionprob"]
        self.init_params_ = {name: arr.copy() for name, arr in best["init"].items()}
        self.loglik_history_ = np.asarray(best["history"], dtype=float)
        self.n_iter_ = len(best["history"])
        self.converged_ = bool(best["converged"])
        self.n_features_ = m
        self.n_sequences_ = int(offsets.size - 1)
        return self

    def fit_sequences(self, sequences: Iterable[Any]) -> BatchedCategoricalHMM:
        """Fit on a list of 1-D integer arrays, one per sequence.

        Parameters
        ----------
        sequences : iterable of array-like of int
            The sequences; each needs at least one event.

        Returns
        -------
        self : BatchedCategoricalHMM
            The fitted model.

        Examples
        --------
        >>> BatchedCategoricalHMM(n_components=2).fit_sequences([[0, 1, 1], [1, 0]]).n_features_
        2
        """
        X, lengths = _pack(sequences)
        return self.fit(X, lengths)

    def _resolve_n_features(self) -> int | None:
        m = None if self.n_features is None else _check_int("n_features", self.n_features, 1)
        if self.emissionprob_init is not None:
            shape = np.shape(self.emissionprob_init)
            if len(shape) == 2:
                if m is not None and shape[1] != m:
                    raise ParameterError(
                        "emissionprob_init", shape,
                        message=f"emissionprob_init has {shape[1]!r} columns but n_features={m!r}; they must agree",
                    )
                m = int(shape[1])
        return m

    def _starting_matrices(self, init: str, k: int, m: int, seed: Any, x: np.ndarray, offsets: np.ndarray,
                           given: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
        if init == "random":
            drawn = _random_start(k, m, seed)
        else:
            drawn = _kmeans_start(k, m, seed, x, offsets) if given["emissionprob"] is None or given["transmat"] is None \
                or given["startprob"] is None else {}
        return {name: (given[name] if given[name] is not None else drawn[name]).copy() for name in given}

    def _fit_once(self, implementation: str, x: np.ndarray, offsets: np.ndarray, start: dict[str, np.ndarray],
                  n_iter: int, tol: float) -> dict[str, Any]:
        if implementation == "hmmlearn":
            ref = _hmmlearn_model(start["startprob"], start["transmat"], start["emissionprob"], n_iter=n_iter, tol=tol)
            with _quiet_hmmlearn():
                ref.fit(x[:, None], np.diff(offsets))
            history = list(ref.monitor_.history)
            converged = len(history) >= 2 and history[-1] - history[-2] < tol
            return {"startprob": np.asarray(ref.startprob_, dtype=float), "transmat": np.asarray(ref.transmat_, dtype=float),
                    "emissionprob": np.asarray(ref.emissionprob_, dtype=float), "history": history, "converged": converged}
        startprob = start["startprob"].astype(float)
        transmat = start["transmat"].astype(float)
        emission = start["emissionprob"].astype(float)
        history: list[float] = []
        converged = False
        for _ in range(n_iter):
            ll, s_start, s_trans, s_obs_t, bad = _estep(x, offsets, startprob, transmat, np.ascontiguousarray(emission.T))
            if bad >= 0:
                raise ParameterError(
                    "X", int(bad),
                    message=f"sequence {int(bad)} has zero probability under the current parameters (a symbol no state "
                    "can emit, or an impossible transition); check the starting matrices",
                )
            # M-step, exactly as hmmlearn's (priors of 1): zero start/transition entries stay zero
            startprob = np.where(startprob == 0, 0.0, np.maximum(s_start, 0.0))
            startprob = startprob / startprob.sum()
            transmat = _normalize_rows(np.where(transmat == 0, 0.0, np.maximum(s_trans, 0.0)))
            emission = _normalize_rows(np.maximum(s_obs_t.T, 0.0))
            history.append(float(ll))
            if len(history) >= 2 and history[-1] - history[-2] < tol:
                converged = True
                break
        return {"startprob": startprob, "transmat": transmat, "emissionprob": emission, "history": history,
                "converged": converged}

    # -- inference ----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "startprob_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' or 'fit_sequences' first"
            )

    def _data(self, X: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return _as_sequences(X, lengths, self.n_features_)

    def _reference(self) -> Any:
        return _hmmlearn_model(self.startprob_, self.transmat_, self.emissionprob_, n_iter=1, tol=0.0)

    def score_sequences(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Log-likelihood of each sequence under the fitted model.

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        ndarray of shape (n_sequences,)
            Log-likelihoods; ``-inf`` for a sequence with zero probability.

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=1).fit([[0], [1]], lengths=[1, 1])
        >>> np.round(m.score_sequences([[0], [1]], lengths=[1, 1]), 4).tolist()
        [-0.6931, -0.6931]
        """
        x, offsets = self._data(X, lengths)
        if self.implementation == "hmmlearn":
            ref = self._reference()
            return np.array([_safe_hmmlearn_score(ref, x[a:b, None]) for a, b in zip(offsets[:-1], offsets[1:])])
        return _sequence_logliks(x, offsets, self.startprob_, self.transmat_, np.ascontiguousarray(self.emissionprob_.T))

    def score(self, X: Any, lengths: Any = None) -> float:
        """Total log-likelihood of ``X`` under the fitted model.

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        float
            Sum of the sequences' log-likelihoods (``-inf`` if any has zero probability).

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=1).fit([[0], [1], [1], [1]])
        >>> round(m.score([[0], [1], [1], [1]]), 4)
        -2.2493
        """
        return float(_sequential_sum(self.score_sequences(X, lengths)))

    def score_samples(self, X: Any, lengths: Any = None) -> tuple[float, np.ndarray]:
        """Total log-likelihood and per-event state posteriors (as hmmlearn's ``score_samples``).

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        log_prob : float
            Total log-likelihood.
        posteriors : ndarray of shape (n_samples, n_components)
            ``P(state | whole sequence)`` for every event; NaN rows for zero-probability sequences.

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=2).fit([[0], [1], [1]])
        >>> ll, post = m.score_samples([[0], [1], [1]])
        >>> post.shape, bool(np.allclose(post.sum(axis=1), 1))
        ((3, 2), True)
        """
        x, offsets = self._data(X, lengths)
        if self.implementation == "hmmlearn":
            ref = self._reference()
            lls, posts = [], []
            for a, b in zip(offsets[:-1], offsets[1:]):
                ll = _safe_hmmlearn_score(ref, x[a:b, None])
                lls.append(ll)
                posts.append(ref.predict_proba(x[a:b, None]) if np.isfinite(ll) else np.full((b - a, self.n_components), np.nan))
            return float(_sequential_sum(np.asarray(lls))), np.concatenate(posts)
        lls, post = _posteriors(x, offsets, self.startprob_, self.transmat_, np.ascontiguousarray(self.emissionprob_.T))
        return float(_sequential_sum(lls)), post

    def predict_proba(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Per-event state posteriors ``P(state | whole sequence)``.

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to 1 (NaN rows for zero-probability sequences).

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=2).fit([[0], [1], [1]])
        >>> m.predict_proba([[0], [1]], lengths=[1, 1]).shape
        (2, 2)
        """
        return self.score_samples(X, lengths)[1]

    def decode(self, X: Any, lengths: Any = None) -> tuple[float, np.ndarray]:
        """Viterbi decoding: total log-probability of the best paths, and the states.

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        log_prob : float
            Sum over sequences of the log-probability of the most likely path.
        states : ndarray of int64, shape (n_samples,)
            Most likely state of every event.

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=2).fit([[0], [1], [1]])
        >>> logp, states = m.decode([[0], [1], [1]])
        >>> states.shape
        (3,)
        """
        x, offsets = self._data(X, lengths)
        if self.implementation == "hmmlearn":
            logp, states = self._reference().decode(x[:, None], np.diff(offsets), algorithm="viterbi")
            return float(logp), np.asarray(states, dtype=np.int64)
        with np.errstate(divide="ignore"):
            log_start, log_trans = np.log(self.startprob_), np.log(self.transmat_)
            log_emit_t = np.ascontiguousarray(np.log(self.emissionprob_).T)
        logps, states = _viterbi(x, offsets, log_start, log_trans, log_emit_t)
        return float(_sequential_sum(logps)), states

    def predict(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Most likely (Viterbi) state of every event.

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        ndarray of int64, shape (n_samples,)
            States in ``0 .. n_components - 1``.

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=2).fit([[0], [1], [1]])
        >>> m.predict([[0], [1], [1]]).dtype
        dtype('int64')
        """
        return self.decode(X, lengths)[1]

    # -- model selection ----------------------------------------------------------------------

    def n_parameters(self) -> int:
        """Number of free parameters: ``(n - 1) + n (n - 1) + n (m - 1)``.

        Examples
        --------
        >>> BatchedCategoricalHMM(n_components=3).fit([[0], [1], [2], [3]]).n_parameters()
        17
        """
        self._check_fitted()
        n, m = self.startprob_.shape[0], self.n_features_
        return (n - 1) + n * (n - 1) + n * (m - 1)

    def bic(self, X: Any, lengths: Any = None) -> float:
        """Bayesian information criterion ``-2 log L + p log(n_samples)`` (lower is better; as hmmlearn).

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        float
            The BIC.

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=1).fit([[0], [1]])
        >>> round(m.bic([[0], [1]]), 4)
        3.4657
        """
        x, _ = self._data(X, lengths)
        return -2.0 * self.score(X, lengths) + self.n_parameters() * math.log(x.size)

    def aic(self, X: Any, lengths: Any = None) -> float:
        """Akaike information criterion ``-2 log L + 2 p`` (lower is better).

        Parameters
        ----------
        X : array-like of int, shape (n_samples, 1) or (n_samples,)
            Concatenated sequences.
        lengths : array-like of int, default=None
            Sequence lengths (``None``: one sequence).

        Returns
        -------
        float
            The AIC.

        Examples
        --------
        >>> m = BatchedCategoricalHMM(n_components=1).fit([[0], [1]])
        >>> round(m.aic([[0], [1]]), 4)
        4.7726
        """
        return -2.0 * self.score(X, lengths) + 2.0 * self.n_parameters()


# ---------------------------------------------------------------------------------------------
# starting matrices and hmmlearn glue


def _random_start(k: int, m: int, seed: Any) -> dict[str, np.ndarray]:
    """The draws of ``hmmlearn.hmm.CategoricalHMM._init`` for ``random_state=seed``.

    hmmlearn draws start and transition probabilities from ``check_random_state(seed)`` and the
    emission weights from a second ``check_random_state(seed)`` (a fresh generator for an int).
    """
    rng = check_random_state(seed)
    alpha = np.full(k, 1.0 / k)
    startprob = rng.dirichlet(alpha)
    transmat = rng.dirichlet(alpha, size=k)
    rng2 = check_random_state(seed)
    emission = rng2.rand(k, m)
    emission /= emission.sum(axis=1, keepdims=True)
    return {"startprob": startprob, "transmat": transmat, "emissionprob": emission}


def _kmeans_start(k: int, m: int, seed: Any, x: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Group symbols by k-means on their neighbour profiles; start from the groups' counts."""
    from sklearn.cluster import KMeans

    first = np.zeros(x.size, dtype=bool)
    first[offsets[:-1]] = True
    cur, nxt = x[:-1][~first[1:]], x[1:][~first[1:]]
    bigram = np.zeros((m, m))
    np.add.at(bigram, (cur, nxt), 1.0)
    counts = np.bincount(x, minlength=m).astype(float)
    profile = np.hstack([_normalize_rows(bigram + 0.5), _normalize_rows(bigram.T + 0.5)])
    seen = np.flatnonzero(counts > 0)
    labels = np.zeros(m, dtype=np.int64)
    if seen.size >= k:
        km = KMeans(n_clusters=k, n_init=4, random_state=check_random_state(seed).randint(2**31 - 1))
        labels[seen] = km.fit_predict(profile[seen], sample_weight=counts[seen])
        unseen = np.setdiff1d(np.arange(m), seen)
        if unseen.size:
            labels[unseen] = km.predict(profile[unseen])
    else:  # fewer distinct symbols than states: one state per symbol, the rest share the frequencies
        labels[seen] = np.arange(seen.size)
    freq = counts / counts.sum()
    hard = np.zeros((k, m))
    hard[labels, np.arange(m)] = counts
    emission = 0.8 * _normalize_rows(hard) + 0.2 * freq
    emission[hard.sum(axis=1) == 0] = freq
    z = labels[x]
    start_counts = np.bincount(z[offsets[:-1]], minlength=k).astype(float)
    trans_counts = np.zeros((k, k))
    np.add.at(trans_counts, (z[:-1][~first[1:]], z[1:][~first[1:]]), 1.0)
    startprob = 0.8 * start_counts / start_counts.sum() + 0.2 / k
    transmat = 0.8 * _normalize_rows(trans_counts) + 0.2 / k
    transmat[trans_counts.sum(axis=1) == 0] = 1.0 / k
    emission = emission / emission.sum(axis=1, keepdims=True)
    return {"startprob": startprob / startprob.sum(), "transmat": _normalize_rows(transmat), "emissionprob": emission}


def _hmmlearn_model(startprob: np.ndarray, transmat: np.ndarray, emissionprob: np.ndarray, *, n_iter: int, tol: float) -> Any:
    """An ``hmmlearn.hmm.CategoricalHMM`` (scaling) set to the given matrices, fitting all three."""
    from hmmlearn.hmm import CategoricalHMM

    k, m = emissionprob.shape
    ref = CategoricalHMM(n_components=k, n_iter=n_iter, tol=tol, implementation="scaling", init_params="",
                         params="ste", n_features=m)
    ref.startprob_ = np.array(startprob, dtype=float)
    ref.transmat_ = np.array(transmat, dtype=float)
    ref.emissionprob_ = np.array(emissionprob, dtype=float)
    return ref


@contextmanager
def _quiet_hmmlearn() -> Iterator[None]:
    """Silence hmmlearn's log warnings (\"not converging\" on 1e-13 dips, degenerate-fit notes) for a call."""
    logger = logging.getLogger("hmmlearn.base")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _safe_hmmlearn_score(ref: Any, x: np.ndarray) -> float:
    try:
        return float(ref.score(x))
    except ValueError as exc:  # hmmlearn's underflow error (a std::range_error)
        if "underflow" not in str(exc):
            raise
        return -np.inf


# ---------------------------------------------------------------------------------------------
# helpers around a fitted model


def select_n_states(
    X: Any,
    lengths: Any = None,
    candidates: Iterable[int] = range(2, 9),
    criterion: Literal["bic", "aic"] = "bic",
    random_state: int | None = 0,
    **model_params: Any,
) -> tuple[pd.DataFrame, BatchedCategoricalHMM]:
    """Fit one HMM per candidate number of states; pick the one with the lowest BIC (or AIC).

    Parameters
    ----------
    X : array-like of int, shape (n_samples, 1) or (n_samples,)
        Concatenated sequences.
    lengths : array-like of int, default=None
        Sequence lengths (``None``: one sequence).
    candidates : iterable of int, default=range(2, 9)
        Numbers of states to try.
    criterion : {"bic", "aic"}, default="bic"
        Information criterion to minimise.
    random_state : int or None, default=0
        Seed passed to every candidate model.
    **model_params
        Other :class:`BatchedCategoricalHMM` parameters (``n_iter``, ``tol``, ``n_init``,
        ``init``, ``implementation``, ``n_features``). ``init`` defaults to ``"kmeans"`` here:
        hmmlearn-style random starts (Dirichlet(1/n) rows) often stall in a poor local optimum
        for the larger candidates, which biases the comparison; use ``init="random"`` with
        ``n_init`` of a few to compare random restarts instead. Explicit starting matrices are
        not allowed: their shape depends on the candidate.

    Returns
    -------
    table : pandas.DataFrame
        One row per candidate: ``n_states``, ``loglik`` (of the fitted parameters), ``n_parameters``,
        ``bic``, ``aic``, ``n_iter`` (iterations run), ``converged`` and ``chosen``.
    model : BatchedCategoricalHMM
        The chosen fitted model.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 3, size=(200, 1))
    >>> table, model = select_n_states(X, [20] * 10, candidates=[1, 2], n_iter=5)
    >>> table["n_states"].tolist(), int(model.n_components)
    ([1, 2], 1)
    """
    _check_choice("criterion", criterion, _CRITERIA)
    cands = list(candidates)
    if not cands:
        raise ParameterError("candidates", cands, message="candidates is empty; give at least one number of states")
    for c in cands:
        _check_int("candidates", c, 1)
    if len(set(cands)) != len(cands):
        raise ParameterError("candidates", cands, message=f"candidates has repeats: {cands!r}")
    forbidden = {"n_components", "random_state", "startprob_init", "transmat_init", "emissionprob_init"} & set(model_params)
    if forbidden:
        raise ParameterError(
            sorted(forbidden)[0], model_params[sorted(forbidden)[0]],
            message=f"select_n_states sets {sorted(forbidden)!r} itself; pass candidates/random_state instead",
        )
    allowed = set(BatchedCategoricalHMM().get_params()) - {"n_components", "random_state"}
    unknown = set(model_params) - allowed
    if unknown:
        raise ParameterError(sorted(unknown)[0], None, sorted(allowed))
    model_params.setdefault("init", "kmeans")
    rows, models = [], []
    for c in cands:
        model = BatchedCategoricalHMM(n_components=c, random_state=random_state, **model_params).fit(X, lengths)
        ll = model.score(X, lengths)
        p = model.n_parameters()
        n = int(np.asarray(X).shape[0])
        rows.append({"n_states": c, "loglik": ll, "n_parameters": p, "bic": -2 * ll + p * math.log(n),
                     "aic": -2 * ll + 2 * p, "n_iter": model.n_iter_, "converged": model.converged_})
        models.append(model)
    table = pd.DataFrame(rows)
    best = int(np.argmin(table[criterion].to_numpy()))
    table["chosen"] = np.arange(len(table)) == best
    return table, models[best]


def name_states(model: BatchedCategoricalHMM, feature_names: Sequence[str], top: int = 3) -> list[str]:
    """Name each state by its ``top`` most emitted events, most probable first.

    Parameters
    ----------
    model : BatchedCategoricalHMM
        A fitted model.
    feature_names : sequence of str
        Event name of each symbol code (``feature_names[code]``), length ``n_features_``.
    top : int, default=3
        Number of events in each name.

    Returns
    -------
    list of str
        One name per state, like ``"cart_view / add_to_cart / checkout_start"``.

    Examples
    --------
    >>> m = BatchedCategoricalHMM(n_components=1).fit([[0], [1], [1]])
    >>> name_states(m, ["search", "page_view"], top=2)
    ['page_view / search']
    """
    if not isinstance(model, BatchedCategoricalHMM):
        raise ParameterError("model", type(model).__name__,
                             message=f"model must be a BatchedCategoricalHMM; got {type(model).__name__!r}")
    model._check_fitted()
    top = _check_int("top", top, 1)
    names = [str(n) for n in feature_names]
    if len(names) != model.n_features_:
        raise ParameterError(
            "feature_names", len(names),
            message=f"feature_names has {len(names)} names but the model has n_features_={model.n_features_}",
        )
    order = np.argsort(-model.emissionprob_, axis=1, kind="stable")[:, :top]
    return [" / ".join(names[j] for j in row) for row in order]


def state_occupancy(
    states: Any,
    lengths: Any = None,
    *,
    groups: Any = None,
    n_components: int | None = None,
) -> pd.DataFrame:
    """Share of events in each state, per sequence (``lengths``) or per group (``groups``).

    Parameters
    ----------
    states : array-like of int, shape (n_samples,)
        Decoded states, e.g. from :meth:`BatchedCategoricalHMM.predict`.
    lengths : array-like of int, default=None
        Sequence lengths: one row per sequence, in order. Give either ``lengths`` or ``groups``;
        with neither, all events form one row.
    groups : array-like, shape (n_samples,), default=None
        A group label per event (for example the user id of each event): one row per group,
        sorted by label.
    n_components : int, default=None
        Number of states (columns); ``None`` uses the largest state plus one.

    Returns
    -------
    pandas.DataFrame
        Index: sequence number (``sequence``) or group label (``group``). Columns ``n_events``
        then ``state_0 .. state_{n-1}`` (shares summing to 1 per row).

    Examples
    --------
    >>> state_occupancy([0, 0, 1, 1, 1], lengths=[2, 3]).to_dict("list")
    {'n_events': [2, 3], 'state_0': [1.0, 0.0], 'state_1': [0.0, 1.0]}
    >>> state_occupancy([0, 1, 1], groups=["u1", "u1", "u2"])["state_1"].tolist()
    [0.5, 1.0]
    """
    if lengths is not None and groups is not None:
        raise ParameterError("groups", "given with lengths", message="give either lengths or groups, not both")
    s = np.asarray(states)
    if s.ndim != 1 or s.size == 0 or s.dtype.kind not in "iu":
        raise ParameterError("states", getattr(s, "dtype", None),
                             message="states must be a non-empty 1-D array of integer state codes")
    if s.min() < 0:
        raise ParameterError("states", int(s.min()), message=f"states holds negative state {int(s.min())!r}")
    k = int(s.max()) + 1 if n_components is None else _check_int("n_components", n_components, 1)
    if s.max() >= k:
        raise ParameterError("states", int(s.max()), message=f"states holds state {int(s.max())!r} but n_components={k!r}")
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != s.shape:
            raise ParameterError("groups", g.shape,
                                 message=f"groups must have one label per state; got shape {g.shape!r} for {s.size} states")
        labels, row = np.unique(g, return_inverse=True)
        index = pd.Index(labels, name="group")
    else:
        x, offsets = _as_sequences(np.zeros(s.size, dtype=np.int64), lengths, None)
        row = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
        index = pd.RangeIndex(offsets.size - 1, name="sequence")
    counts = np.zeros((len(index), k))
    np.add.at(counts, (row, s.astype(np.int64)), 1.0)
    n = counts.sum(axis=1)
    out = pd.DataFrame(counts / n[:, None], index=index, columns=[f"state_{i}" for i in range(k)])
    out.insert(0, "n_events", n.astype(np.int64))
    return out
