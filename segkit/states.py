"""Latent behavior states: a categorical HMM over session sequences, ready for segments.

:func:`fit_behavior_states` takes item sequences (:func:`segkit.build_sequences`), encodes the
items, chooses the number of states by BIC with :func:`segkit.hmm.select_n_states` (segkit's
batched Baum–Welch; ``implementation="hmmlearn"`` runs hmmlearn's ``CategoricalHMM`` instead),
names each state by its most emitted items, decodes every sequence with Viterbi and summarises
the states per user: the dominant state and the share of events in each state (occupancy),
which later notebooks use as segment conditions and model features.

Examples
--------
>>> seqs = [["blog", "blog", "blog"], ["product", "add_to_cart", "cart"]] * 20
>>> bs = fit_behavior_states(seqs, candidates=[2], top=1, random_state=0)
>>> sorted(bs.names)
['add_to_cart', 'blog']
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import ParameterError
from .hmm import BatchedCategoricalHMM, name_states, select_n_states, state_occupancy

__all__ = ["BehaviorStates", "fit_behavior_states", "plot_emissions", "plot_state_transitions"]


@dataclass(frozen=True)
class BehaviorStates:
    """What :func:`fit_behavior_states` returns.

    Attributes
    ----------
    model : BatchedCategoricalHMM
        The chosen fitted model.
    selection : DataFrame
        One row per candidate number of states (log-likelihood, parameters, BIC, AIC, chosen).
    items : list of str
        The item of each symbol code.
    names : list of str
        One name per state, from its most emitted items (made unique with a ``#k`` suffix).
    emissions : DataFrame
        States x items emission probabilities (rows sum to 1).
    transitions : DataFrame
        States x states transition probabilities.
    events : DataFrame
        One row per item of every sequence: ``sequence_id`` (when known), ``position``,
        ``item``, ``state`` (code) and ``state_name`` (Viterbi path).
    users : DataFrame or None
        Per user (when the sequence ids carry ``user_id``): ``dominant_state`` (name),
        ``n_events`` and one ``share_<k>`` column per state.
    """

    model: BatchedCategoricalHMM
    selection: pd.DataFrame
    items: list[str]
    names: list[str]
    emissions: pd.DataFrame
    transitions: pd.DataFrame
    events: pd.DataFrame
    users: pd.DataFrame | None


def _encode(sequences: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    if len(lengths) == 0 or (lengths == 0).all():
        raise ParameterError("sequences", "empty", message="fit_behavior_states needs at least one non-empty sequence")
    flat = pd.Series([str(x) for s in sequences for x in s], dtype=object)
    codes, uniques = pd.factorize(flat, sort=True)
    return codes.astype(np.int64), lengths, [str(u) for u in uniques]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
    return out


def fit_behavior_states(
    sequences: Any,
    *,
    candidates: Iterable[int] = range(2, 8),
    criterion: Literal["bic", "aic"] = "bic",
    n_iter: int = 50,
    top: int = 3,
    implementation: Literal["batched", "hmmlearn"] = "batched",
    max_sequences: int | None = None,
    random_state: int = 0,
) -> BehaviorStates:
    """Fit a categorical HMM on item sequences, choosing the number of states by BIC.

    Parameters
    ----------
    sequences : Sequences or list of lists
        Item sequences, e.g. from :func:`segkit.build_sequences` (their ``ids`` give the per-user
        summary); empty sequences are skipped.
    candidates : iterable of int, default=range(2, 8)
        Numbers of states to compare (each at most the number of distinct items).
    criterion : {"bic", "aic"}, default="bic"
    n_iter : int, default=50
        Maximum EM iterations per candidate.
    top : int, default=3
        Items in each state's name.
    implementation : {"batched", "hmmlearn"}, default="batched"
        segkit's batched EM or hmmlearn's ``CategoricalHMM`` (the reference; same answer, slower).
    max_sequences : int, optional
        Fit on a seeded random sample of this many sequences (the selection table says how many);
        every sequence is decoded either way.
    random_state : int, default=0

    Returns
    -------
    BehaviorStates

    Raises
    ------
    ParameterError
        No non-empty sequence, or a candidate larger than the number of distinct items.
    """
    ids = getattr(sequences, "ids", None)
    seqs = list(sequences)
    keep = np.array([len(s) > 0 for s in seqs], dtype=bool)
    seqs = [s for s, k in zip(seqs, keep) if k]
    x, lengths, items = _encode(seqs)
    cands = sorted({int(c) for c in candidates})
    too_big = [c for c in cands if c > len(items)]
    if not cands or too_big:
        raise ParameterError("candidates", too_big or cands,
                             message=f"Parameter 'candidates' got {too_big or cands!r}: each number of states must be "
                             f"between 1 and the number of distinct items ({len(items)})")
    fx, flengths = x, lengths
    if max_sequences is not None and len(lengths) > max_sequences:
        pick = np.sort(np.random.default_rng(random_state).choice(len(lengths), size=int(max_sequences), replace=False))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        fx = np.concatenate([x[starts[i]:starts[i] + lengths[i]] for i in pick])
        flengths = lengths[pick]
    table, model = select_n_states(fx.reshape(-1, 1), flengths, candidates=cands, criterion=criterion,
                                   random_state=random_state, n_iter=n_iter, implementation=implementation,
                                   n_features=len(items))
    table = table.assign(n_sequences=len(flengths))
    names = _unique(name_states(model, items, top=top))
    states = model.predict(x.reshape(-1, 1), lengths)
    seq_index = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(x)) - np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    events = pd.DataFrame({"position": position, "item": np.asarray(items, dtype=object)[x], "state": states,
                           "state_name": np.asarray(names, dtype=object)[states]})
    users = None
    if ids is not None:
        kept_ids = ids.loc[keep].reset_index(drop=True)
        events.insert(0, "sequence_id", kept_ids["sequence_id"].to_numpy()[seq_index])
        if "user_id" in kept_ids.columns:
            user = kept_ids["user_id"].astype(str).to_numpy()[seq_index]
            occ = state_occupancy(states, groups=user, n_components=model.n_components)
            shares = occ[[f"state_{k}" for k in range(model.n_components)]]
            users = pd.DataFrame({"user_id": occ.index.astype(str), "n_events": occ["n_events"].to_numpy(),
                                  "dominant_state": np.asarray(names, dtype=object)[shares.to_numpy().argmax(axis=1)]})
            for k in range(model.n_components):
                users[f"share_{k}"] = shares[f"state_{k}"].to_numpy()
    emissions = pd.DataFrame(model.emissionprob_, index=pd.Index(names, name="state"), columns=pd.Index(items, name="item"))
    transitions = pd.DataFrame(model.transmat_, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))
    return BehaviorStates(model, table, items, names, emissions, transitions, events, users)


def plot_emissions(states: BehaviorStates, *, top: int = 12, ax: Any = None) -> Any:
    """Heatmap of the emission probabilities of the ``top`` most frequent items per state."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    freq = states.events["item"].value_counts().index[:top]
    data = states.emissions[list(freq)]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 0.7 * len(freq), 14), 1.2 + 0.55 * len(data)))
    sns.heatmap(data, annot=True, fmt=".2f", cmap="Blues", cbar=False, ax=ax, linewidths=0.5)
    ax.set_title("What each state emits: P(item | state)")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.figure.tight_layout()
    return ax.figure


def plot_state_transitions(states: BehaviorStates, *, ax: Any = None) -> Any:
    """Heatmap of the state transition matrix."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        n = len(states.names)
        _, ax = plt.subplots(figsize=(2.5 + 1.4 * n, 1.2 + 0.6 * n))
    sns.heatmap(states.transitions, annot=True, fmt=".2f", cmap="Greens", vmin=0, vmax=1, cbar=False, ax=ax,
                linewidths=0.5)
    ax.set_title("State transitions: P(next state | state)")
    ax.figure.tight_layout()
    return ax.figure
