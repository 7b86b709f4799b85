"""Sequential patterns: the ordered event sub-sequences that many sessions share.

:func:`mine_patterns` finds every pattern (a tuple of items) that occurs, in order and with gaps
allowed, in at least ``min_support`` of the sequences; optionally only the closed or the generator
ones, the ``top_k`` most frequent, or those of some lengths or containing / ending with an item.

Two engines give the same frequent patterns and supports:

- ``"fast"`` (the default through ``"auto"``): segkit's compiled PrefixSpan
  (:mod:`segkit._prefixspan_numba`, numba, pseudo-projection over a CSR of int32 codes),
  with exact closed and generator filters;
- ``"prefixspan"``: the `prefixspan <https://pypi.org/project/prefixspan/>`_ package (pure
  Python), the reference implementation.

Definitions
-----------
Support
    The number of sequences that contain the pattern as a subsequence (items in order, gaps
    allowed), each sequence counted once however often the pattern occurs in it.
Closed
    No super-pattern (one more item inserted anywhere) has the same support.
Generator
    No sub-pattern (one item deleted) has the same support; the empty pattern is a sub-pattern of
    every single item and has the support of the whole database, so an item present in every
    sequence is not a generator (the package's convention).

Closedness and generator-ness are properties of a pattern in the whole database: they are
decided on all frequent patterns, whatever ``min_len``, ``max_len``, ``must_contain`` or
``must_end_with`` keep, and ``top_k`` is applied last. ``closed=True`` together with
``generator=True`` keeps the patterns that are both (the package allows the combination too).

The package (0.5.2) states the same definitions, but its closed (BIDE-style) and generator
(FEAT-style) checks only approximate them, so ``engine="fast"`` and ``engine="prefixspan"`` can
differ in those modes:

- its closed check scans only the "semi-maximum periods" and can keep a pattern that is not
  closed: on ``[[0, 4, 0, 1], [0, 4, 1]]`` at support 2 it keeps ``(0, 1)``, yet ``(0, 4, 1)``
  also has support 2 (its result is a superset of the closed patterns);
- its generator check compares the supports of prefixes with an item deleted and can drop true
  generators, repeated items especially: on ``[["p", "p", "p"], ["p", "p"], ["p"]]`` it drops
  ``("p", "p", "p")`` (support 1; its only deletion ``("p", "p")`` has support 2). On 5,000
  simulated page-type journeys at support 50 it returns 622 of the 1,506 generators.

Its frequent and top-k answers are exact and equal segkit's. ``engine="fast"`` implements the
definitions exactly (checked against a brute-force oracle in the tests); ``engine="prefixspan"``
returns the package's own answer.

Order of the result
-------------------
Rows are sorted by support (descending), then by pattern: patterns compare item by item, a
pattern before its extensions, and items in their natural order when all are strings or all are
real numbers, otherwise by ``(type name, repr)``. The order is deterministic and does not depend
on the order of the sequences.
"""
from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import ParameterError, did_you_mean

__all__ = ["mine_patterns", "ENGINES"]

Engine = Literal["auto", "fast", "prefixspan"]
ENGINES = ("auto", "fast", "prefixspan")
_COLUMNS = ["pattern", "support", "length"]
_FRACTION_TOL = 1e-9

_short = reprlib.Repr()
_short.maxlist = _short.maxtuple = 6
_short.maxstring = _short.maxother = 60


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(name, value, [True, False])
    return bool(value)


def _check_optional_int(name: str, value: Any, lo: int) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < lo:
        raise ParameterError(name, value, f"None or an int >= {lo}")
    return int(value)


def _absolute_support(min_support: Any, n_sequences: int) -> int:
    """``min_support`` as a count: an int as is, a fraction as ``ceil(fraction * n_sequences)``."""
    allowed = "an int >= 1 (a count of sequences) or a float in (0, 1] (a fraction of them)"
    if _is_int(min_support):
        if min_support < 1:
            raise ParameterError("min_support", min_support, allowed)
        return int(min_support)
    if isinstance(min_support, (float, np.floating)) and not isinstance(min_support, bool):
        frac = float(min_support)
        if not (0.0 < frac <= 1.0):  # also rejects NaN
            raise ParameterError("min_support", min_support, allowed)
        # support >= frac * n  <=>  support >= ceil(frac * n); the tolerance keeps 0.07 * 100 at 7
        return max(1, math.ceil(frac * n_sequences - _FRACTION_TOL))
    raise ParameterError("min_support", min_support, allowed)


def _is_missing(item: Any) -> bool:
    return item is None or (isinstance(item, (float, np.floating)) and item != item)


def _item_order(uniques: list[Any]) -> list[Any]:
    """The distinct items in pattern order (see the module docstring)."""
    if all(isinstance(u, str) for u in uniques) or all(
        isinstance(u, numbers.Real) for u in uniques
    ):
        return sorted(uniques)
    return sorted(uniques, key=lambda u: (type(u).__name__, repr(u)))


def _encode(sequences: Any) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Validate ``sequences``; return (codes int32, offsets int64, items by code)."""
    if isinstance(sequences, pd.Series):
        sequences = sequences.tolist()
    elif isinstance(sequences, np.ndarray):
        if sequences.ndim != 1:
            raise ParameterError("sequences", sequences, "a list of sequences (lists) of hashable items",
                                 message=f"Parameter 'sequences' must be one-dimensional, got an array of "
                                         f"shape {sequences.shape}")
        sequences = list(sequences)
    elif isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
        raise ParameterError(
            "sequences", sequences, "a list of sequences (lists) of hashable items",
            message=f"Parameter 'sequences' must be a list of sequences (lists or tuples) of hashable "
                    f"items, got {type(sequences).__name__} {_short.repr(sequences)}",
        )
    flat: list[Any] = []
    lengths = np.empty(len(sequences), dtype=np.int64)
    for i, seq in enumerate(sequences):
        kind = type(seq)
        if kind is list or kind is tuple:
            pass  # the common case, without the slower abstract-class checks below
        elif isinstance(seq, np.ndarray) and seq.ndim == 1:
            seq = seq.tolist()
        elif isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
            kind = "a string is not a sequence of items; wrap it in a list" if isinstance(seq, (str, bytes)) \
                else "expected a list or tuple of items"
            raise ParameterError(
                f"sequences[{i}]", seq, "a list or tuple of hashable items",
                message=f"Parameter 'sequences[{i}]' is {type(seq).__name__} {_short.repr(seq)}: {kind}",
            )
        lengths[i] = len(seq)
        flat.extend(seq)
    try:
        index = dict.fromkeys(flat)
    except TypeError:
        index = None
    if index is None:
        _raise_item(sequences, _unhashable, "is not hashable")
    uniques = list(index)
    if any(_is_missing(u) for u in uniques):
        _raise_item(sequences, _is_missing, "is a missing value (None or NaN)")
    items = _item_order(uniques)
    code_of = {item: code for code, item in enumerate(items)}
    codes = np.fromiter(map(code_of.__getitem__, flat), dtype=np.int32, count=len(flat))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return codes, offsets, items


def _unhashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return True
    return False


def _raise_item(sequences: Sequence[Any], bad: Any, what: str) -> None:
    for i, seq in enumerate(sequences):
        for j, item in enumerate(list(seq)):
            if bad(item):
                raise ParameterError(
                    f"sequences[{i}][{j}]", item, "a hashable item that is not None or NaN",
                    message=f"Item sequences[{i}][{j}] = {_short.repr(item)} ({type(item).__name__}) {what}; "
                            "items must be hashable (str, int, tuple, ...) and not missing",
                )
    raise ParameterError("sequences", None, message=f"An item {what}")  # pragma: no cover


def _check_item(name: str, value: Any, items: list[Any], code_of: dict[Any, int]) -> int | None:
    """Code of the filter item ``value`` (``None`` when no filter); an unknown item is an error."""
    if value is None:
        return None
    if _unhashable(value):
        raise ParameterError(name, value, "None or one item of the sequences")
    code = code_of.get(value)
    if code is not None:
        return code
    hint = did_you_mean(value, [str(i) for i in items]) if isinstance(value, str) else ""
    shown = ", ".join(repr(i) for i in items[:8]) + (", ..." if len(items) > 8 else "")
    raise ParameterError(
        name, value, items,
        message=f"Parameter {name!r} got {value!r}, which occurs in no sequence;{hint} Items: [{shown}]",
    )


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"pattern": pd.Series([], dtype=object), "support": pd.Series([], dtype=np.int64),
                         "length": pd.Series([], dtype=np.int64)})


def mine_patterns(
    sequences: Sequence[Sequence[Hashable]],
    min_support: int | float,
    *,
    closed: bool = False,
    generator: bool = False,
    top_k: int | None = None,
    min_len: int = 1,
    max_len: int | None = None,
    must_contain: Hashable | None = None,
    must_end_with: Hashable | None = None,
    engine: Engine = "auto",
) -> pd.DataFrame:
    """Find the frequent sequential patterns of a list of sequences (PrefixSpan).

    A pattern is a tuple of items; its support is the number of sequences that contain it in
    order, gaps allowed, each sequence counted once. See the module docstring (:mod:`segkit.patterns`)
    for the exact closed / generator definitions and how they differ from the prefixspan package.

    Parameters
    ----------
    sequences : list of list of hashable
        One sequence of items (events, page types, ...) per session or user; lists, tuples or 1-D
        arrays, possibly empty. A string is not a sequence of items (wrap it in a list). Items
        must be hashable and not missing (None or NaN).
    min_support : int or float
        Minimum support: an int >= 1 is a number of sequences; a float in (0, 1] is a fraction of
        ``len(sequences)`` (empty sequences included), converted to ``ceil(min_support * n)``
        (with a 1e-9 tolerance, so 0.07 of 100 sequences is 7). The prefixspan package only
        takes counts (``sup >= minsup``).
    closed : bool, default=False
        Keep only closed patterns: no one-item-longer super-pattern has the same support.
    generator : bool, default=False
        Keep only generator patterns: no one-item-shorter sub-pattern (the empty pattern, with
        support ``len(sequences)``, for single items) has the same support. With ``closed=True``
        too, keep the patterns that are both.
    top_k : int, optional
        Keep the ``top_k`` most frequent patterns (after every other filter), ties broken by the
        pattern order; fewer rows when fewer patterns qualify. In frequent mode the fast engine
        raises its support threshold on the fly; with ``closed`` or ``generator`` it mines at
        ``min_support`` and cuts.
    min_len : int, default=1
        Shortest pattern to return.
    max_len : int, optional
        Longest pattern to return; also bounds the search (the closed check mines one level
        deeper, so a pattern of length ``max_len`` is closed only if no longer pattern has its
        support).
    must_contain : hashable, optional
        Keep only patterns that contain this item. It must occur in some sequence.
    must_end_with : hashable, optional
        Keep only patterns whose last item is this item. It must occur in some sequence.
    engine : {"auto", "fast", "prefixspan"}, default="auto"
        ``"fast"``: segkit's compiled engine (numba; the first call in a new environment compiles
        for about 4 s, plus 1 s for the closed / generator filter; later processes load the
        cached code in about 1 s). ``"prefixspan"``: the prefixspan
        package (the reference, pure Python, much slower). ``"auto"`` is ``"fast"``.

    Returns
    -------
    DataFrame
        ``pattern`` (tuple of items), ``support`` (int) and ``length`` (int), sorted by support
        descending then pattern (see the module docstring). ``attrs`` holds ``min_support``
        (the absolute count used), ``n_sequences`` and ``engine``.

    Raises
    ------
    ParameterError
        ``min_support`` not an int >= 1 or a float in (0, 1] (bools are rejected); a bad
        ``top_k``, ``min_len``, ``max_len`` (below ``min_len``), switch or ``engine``;
        ``sequences`` not a list of sequences, a string as a sequence (the message names its
        index), an unhashable or missing item (named by ``sequences[i][j]``); a filter item that
        occurs in no sequence.

    Examples
    --------
    >>> db = [[0, 1, 2, 3, 4], [1, 1, 1, 3, 4], [2, 1, 2, 2, 0], [1, 1, 1, 2, 2]]
    >>> mine_patterns(db, 2, closed=True).head(3)
      pattern  support  length
    0    (1,)        4       1
    1  (1, 2)        3       2
    2    (0,)        2       1
    >>> journeys = [["home", "product", "cart"], ["home", "search", "product"], ["product", "cart"]]
    >>> mine_patterns(journeys, 2 / 3, min_len=2)["pattern"].tolist()
    [('home', 'product'), ('product', 'cart')]
    """
    closed = _check_bool("closed", closed)
    generator = _check_bool("generator", generator)
    top_k = _check_optional_int("top_k", top_k, 1)
    if not _is_int(min_len) or min_len < 1:
        raise ParameterError("min_len", min_len, "an int >= 1")
    min_len = int(min_len)
    max_len = _check_optional_int("max_len", max_len, 1)
    if max_len is not None and max_len < min_len:
        raise ParameterError("max_len", max_len, f"None or an int >= min_len ({min_len})")
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ParameterError("engine", engine, list(ENGINES))
    if isinstance(min_support, (bool, np.bool_)) or not isinstance(
        min_support, (int, float, np.integer, np.floating)
    ):
        _absolute_support(min_support, 0)  # raises with the message
    codes, offsets, items = _encode(sequences)
    n_seq = len(offsets) - 1
    minsup = _absolute_support(min_support, n_seq)
    code_of = {item: code for code, item in enumerate(items)}
    contain = _check_item("must_contain", must_contain, items, code_of)
    end = _check_item("must_end_with", must_end_with, items, code_of)
    resolved = "fast" if engine == "auto" else engine

    if resolved == "fast":
        rows = _mine_fast(codes, offsets, len(items), minsup, closed, generator, top_k, min_len, max_len,
                          contain, end)
    else:
        rows = _mine_prefixspan(codes, offsets, minsup, closed, generator, min_len, max_len, contain, end)
    # rows: (support, tuple of codes), sorted by support descending then codes
    if top_k is not None:
        rows = rows[:top_k]
    if not rows:
        out = _empty_frame()
    else:
        out = pd.DataFrame({
            "pattern": pd.Series([tuple(items[c] for c in pat) for _, pat in rows], dtype=object),
            "support": np.array([s for s, _ in rows], dtype=np.int64),
            "length": np.array([len(p) for _, p in rows], dtype=np.int64),
        })
    out.attrs = {"min_support": minsup, "n_sequences": n_seq, "engine": resolved}
    return out


def _mine_fast(codes: np.ndarray, offsets: np.ndarray, n_items: int, minsup: int, closed: bool,
               generator: bool, top_k: int | None, min_len: int, max_len: int | None,
               contain: int | None, end: int | None) -> list[tuple[int, tuple[int, ...]]]:
    from . import _prefixspan_numba as kernels

    n_seq = len(offsets) - 1
    if n_seq == 0 or len(codes) == 0:
        return []
    # Items below min_support can be in no frequent pattern: drop them (supports of patterns made
    # of frequent items do not change) and renumber the rest, keeping the order.
    frequent = kernels.item_support(codes, offsets, n_items) >= minsup
    if not frequent.any():
        return []
    if frequent.all():
        flat, offs = codes, offsets
        new_code = np.arange(n_items)
        lengths = np.diff(offsets)
    else:
        new_code = np.cumsum(frequent) - 1
        keep = frequent[codes]
        flat = new_code[codes[keep]].astype(np.int32)
        seq_of = np.repeat(np.arange(n_seq, dtype=np.int64), np.diff(offsets))
        lengths = np.bincount(seq_of[keep], minlength=n_seq)
        offs = np.zeros(n_seq + 1, dtype=np.int64)
        np.cumsum(lengths, out=offs[1:])
    back = np.flatnonzero(frequent)  # new code -> original code
    if (contain is not None and not frequent[contain]) or (end is not None and not frequent[end]):
        return []
    contain_code = -1 if contain is None else int(new_code[contain])
    end_code = -1 if end is None else int(new_code[end])

    longest = int(lengths.max())
    limit = longest if max_len is None else min(max_len, longest)
    depth = limit + 1 if closed and limit < longest else limit
    dynamic_k = top_k if top_k is not None and not closed and not generator else 0
    buf, n_out, _ = kernels.mine(flat, offs, int(frequent.sum()), int(minsup), int(depth), int(dynamic_k),
                                 int(min_len), contain_code, end_code)
    trie = buf[: 5 * n_out].reshape(n_out, 5)
    parent, item, support, length, has = (np.ascontiguousarray(trie[:, i]) for i in range(5))
    keep_rows = length <= limit
    if closed or generator:
        ptr, kids = kernels.children_csr(parent)
        is_closed, is_generator = kernels.mark(parent, item, support, length, ptr, kids, n_seq, closed, generator)
        keep_rows &= is_closed & is_generator
    if min_len > 1:
        keep_rows &= length >= min_len
    if contain is not None:
        keep_rows &= has == 1
    if end is not None:
        keep_rows &= item == end_code
    selected = np.flatnonzero(keep_rows)
    # the trie is in preorder, which is the lexicographic order of the patterns' codes
    selected = selected[np.lexsort((selected, -support[selected]))]
    if top_k is not None:
        selected = selected[:top_k]
    original = back[item].tolist()
    par = parent.tolist()
    pats: dict[int, tuple[int, ...]] = {}
    if len(selected) * 4 >= n_out:  # most rows wanted: build every prefix once, in preorder
        for r in range(n_out):
            p = par[r]
            pats[r] = (pats[p] + (original[r],)) if p >= 0 else (original[r],)
        return [(int(support[r]), pats[r]) for r in selected.tolist()]
    rows = []
    for r in selected.tolist():
        pat = []
        v = r
        while v >= 0:
            pat.append(original[v])
            v = par[v]
        rows.append((int(support[r]), tuple(reversed(pat))))
    return rows


def _mine_prefixspan(codes: np.ndarray, offsets: np.ndarray, minsup: int, closed: bool, generator: bool,
                     min_len: int, max_len: int | None, contain: int | None,
                     end: int | None) -> list[tuple[int, tuple[int, ...]]]:
    from prefixspan import PrefixSpan

    flat = codes.tolist()
    off = offsets.tolist()
    db = [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    if not db:
        return []
    longest = max(map(len, db))
    if longest == 0:
        return []
    ps = PrefixSpan(db)
    ps.minlen = min_len
    ps.maxlen = longest if max_len is None else max_len  # the package's default cap is 1000

    def keep(patt: list[int], matches: Any) -> bool:
        return (contain is None or contain in patt) and (end is None or patt[-1] == end)

    found = ps.frequent(minsup, closed=closed, generator=generator,
                        filter=None if contain is None and end is None else keep)
    return sorted(((int(sup), tuple(patt)) for sup, patt in found), key=lambda r: (-r[0], r[1]))
