"""Sequential patterns: the ordered event sub-sequences that many sessions share.

:func:`mine_patterns` finds every pattern (a tuple of items) that occurs, in order and with gaps
allowed, in at least ``min_support`` of the sequences; optionally only the closed or the generator
ones, the ``top_k`` most frequent, or those of some lengths or containing / ending with an item.

Three engines give the same frequent patterns and supports:

- ``"fast"`` (the default through ``"auto"``): segkit's compiled PrefixSpan
  (:mod:`segkit._prefixspan_numba`, numba, pseudo-projection over a CSR of int32 codes),
  with exact closed and generator filters;
- ``"prefixspan"``: the `prefixspan <https://pypi.org/project/prefixspan/>`_ package (pure
  Python), the reference implementation;
- ``"spark"``: Spark MLlib's PrefixSpan (``pyspark.ml.fpm.PrefixSpan``, through
  :mod:`segkit.spark`, on the running Spark session or a local one) mines every frequent
  pattern, for databases whose pattern search is too large for one process. Spark's
  ``maxPatternLength`` (10 by default, longer patterns silently dropped) is set to ``max_len``,
  or to the longest sequence when ``max_len`` is None. The patterns Spark returns are the whole
  frequent set (mined one level deeper for ``closed``), so the closed, generator, length and
  item filters and ``top_k`` are applied to it on the driver by the fast engine's own selection:
  the result equals ``engine="fast"``'s in every mode, ``attrs["engine"]`` aside.

====================  ===========  ================  ==========================================
option                ``"fast"``   ``"prefixspan"``  ``"spark"``
====================  ===========  ================  ==========================================
frequent, ``top_k``   exact        exact             exact (``top_k`` cut after mining)
``closed``            exact        approximate       exact (as ``"fast"``)
``generator``         exact        approximate       exact (as ``"fast"``)
lengths, item filter  exact        exact             exact (filters after mining)
====================  ===========  ================  ==========================================

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

from .errors import ParameterError, SegkitError, did_you_mean

__all__ = ["mine_patterns", "ENGINES"]

Engine = Literal["auto", "fast", "prefixspan", "spark"]
ENGINES = ("auto", "fast", "prefixspan", "spark")
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
    engine : {"auto", "fast", "prefixspan", "spark"}, default="auto"
        ``"fast"``: segkit's compiled engine (numba; the first call in a new environment compiles
        for about 4 s, plus 1 s for the closed / generator filter; later processes load the
        cached code in about 1 s). ``"prefixspan"``: the prefixspan
        package (the reference, pure Python, much slower). ``"spark"``: Spark MLlib's
        PrefixSpan on the running Spark session (the one ``engine: spark`` started; otherwise
        :func:`segkit.spark.spark_session`'s local one), with the same result as ``"fast"`` for
        every option (see the module docstring); it needs the ``spark`` extra and Java, and
        costs a Spark job (about a second locally), so it pays off only on very large pattern
        searches. Every frequent pattern travels to the driver before ``top_k`` and the
        filters cut, so bound the search with ``min_support`` and ``max_len``. For sequences
        already in a Spark DataFrame use :func:`segkit.spark.mine_patterns_spark`.
        ``"auto"`` is ``"fast"``.

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
        ``sequences`` not a list of sequences (a Spark DataFrame: the message points to
        :func:`segkit.spark.mine_patterns_spark`), a string as a sequence (the message names its
        index), an unhashable or missing item (named by ``sequences[i][j]``); a filter item that
        occurs in no sequence.
    segkit.spark.SparkUnavailableError
        ``engine="spark"`` without pyspark or Java.

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
    if type(sequences).__module__.startswith("pyspark."):
        raise ParameterError("sequences", type(sequences).__name__, "a list of sequences (lists) of hashable items",
                             message="Parameter 'sequences' is a Spark DataFrame; mine_patterns takes a list of "
                             "sequences (engine='spark' sends it to Spark). Mine a Spark DataFrame where it is with "
                             "segkit.spark.mine_patterns_spark(df, min_support, sequence_col=...)")
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
    elif resolved == "spark":
        rows = _mine_spark(codes, offsets, minsup, closed, generator, top_k, min_len, max_len, contain, end)
    else:
        rows = _mine_prefixspan(codes, offsets, minsup, closed, generator, min_len, max_len, contain, end)
    # rows: (support, tuple of codes), sorted by support descending then codes
    if top_k is not None:
        rows = rows[:top_k]
    return _pattern_frame(rows, items, minsup, n_seq, resolved)


def _pattern_frame(rows: list[tuple[int, tuple[int, ...]]], items: list[Any], minsup: int, n_seq: int, engine: str) -> pd.DataFrame:
    """The result frame of ``(support, pattern codes)`` rows: pattern (decoded), support, length."""
    if not rows:
        out = _empty_frame()
    else:
        out = pd.DataFrame({
            "pattern": pd.Series([tuple(items[c] for c in pat) for _, pat in rows], dtype=object),
            "support": np.array([s for s, _ in rows], dtype=np.int64),
            "length": np.array([len(p) for _, p in rows], dtype=np.int64),
        })
    out.attrs = {"min_support": minsup, "n_sequences": n_seq, "engine": engine}
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
    selected = _select(parent, item, support, length, has, n_seq, closed, generator, top_k, min_len, limit,
                       contain is not None, end_code if end is not None else None)
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


def _select(parent: np.ndarray, item: np.ndarray, support: np.ndarray, length: np.ndarray, has: np.ndarray,
            n_seq: int, closed: bool, generator: bool, top_k: int | None, min_len: int, limit: int,
            contain: bool, end_code: int | None) -> np.ndarray:
    """Rows of the frequent-pattern trie that the options keep, in result order.

    The trie (``parent``, last ``item``, ``support``, ``length``, ``has`` = contains the
    ``must_contain`` item) holds every frequent pattern up to its depth, in preorder with
    siblings by ascending item, so preorder is the lexicographic order of the patterns' codes.
    Closed and generator flags are decided on the whole trie (mined one level beyond ``limit``
    for ``closed``), then lengths and item filters apply, then the order (support descending,
    then pattern) and ``top_k``. Shared by the fast and the Spark engines.
    """
    from . import _prefixspan_numba as kernels

    keep_rows = length <= limit
    if closed or generator:
        ptr, kids = kernels.children_csr(parent)
        is_closed, is_generator = kernels.mark(parent, item, support, length, ptr, kids, n_seq, closed, generator)
        keep_rows &= is_closed & is_generator
    if min_len > 1:
        keep_rows &= length >= min_len
    if contain:
        keep_rows &= has == 1
    if end_code is not None:
        keep_rows &= item == end_code
    selected = np.flatnonzero(keep_rows)
    selected = selected[np.lexsort((selected, -support[selected]))]
    if top_k is not None:
        selected = selected[:top_k]
    return selected


def _mine_spark(codes: np.ndarray, offsets: np.ndarray, minsup: int, closed: bool, generator: bool,
                top_k: int | None, min_len: int, max_len: int | None, contain: int | None,
                end: int | None) -> list[tuple[int, tuple[int, ...]]]:
    """``engine="spark"``: every frequent pattern from Spark MLlib's PrefixSpan, then :func:`_select`."""
    from .spark import _frequent_codes, _require_pyspark

    _require_pyspark()  # also when nothing is frequent: engine="spark" needs the extra
    n_seq = len(offsets) - 1
    if n_seq == 0 or len(codes) == 0 or minsup > n_seq:
        return []
    longest = int(np.diff(offsets).max())
    limit = longest if max_len is None else min(max_len, longest)
    depth = limit + 1 if closed and limit < longest else limit  # as the fast engine: closedness needs one level more
    found = _frequent_codes(codes, offsets, minsup, depth)
    if not found:
        return []
    found.sort(key=lambda r: r[1])  # lexicographic order of the codes: the trie's preorder
    pats = [pat for _, pat in found]
    index = {pat: i for i, pat in enumerate(pats)}
    try:  # every prefix of a frequent pattern is frequent, so it is in the result
        parent = np.fromiter((index[pat[:-1]] if len(pat) > 1 else -1 for pat in pats), dtype=np.int64, count=len(pats))
    except KeyError:  # pragma: no cover - Spark invariant
        raise SegkitError("Spark's PrefixSpan returned a pattern without its prefix") from None
    item = np.fromiter((pat[-1] for pat in pats), dtype=np.int64, count=len(pats))
    support = np.fromiter((sup for sup, _ in found), dtype=np.int64, count=len(pats))
    length = np.fromiter((len(pat) for pat in pats), dtype=np.int64, count=len(pats))
    has = np.zeros(len(pats), dtype=np.int64)
    if contain is not None:
        has = np.fromiter((contain in pat for pat in pats), dtype=np.int64, count=len(pats))
    selected = _select(parent, item, support, length, has, n_seq, closed, generator, top_k, min_len, limit,
                       contain is not None, end)
    return [(int(support[r]), pats[r]) for r in selected.tolist()]


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


# ------------------------------------------------------------------------------------------------
# Discriminative patterns: which sequential patterns separate two cohorts of sequences
# ------------------------------------------------------------------------------------------------
#
# discriminative_patterns mines the frequent patterns of each cohort with mine_patterns, counts
# the support of every candidate in both cohorts exactly (segkit._subseq_numba.contains, a
# prefix-sharing walk over the candidates), and tests each pattern's 2x2 table
# (contains / does not contain x cohort a / b) with Fisher's exact test or the chi-squared test,
# both vectorized over the candidates, then corrects for the number of candidates tested.

from typing import TYPE_CHECKING  # noqa: E402

from .errors import format_allowed  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from .segments import Did, Then

Test = Literal["fisher", "chi2"]
Correction = Literal["fdr_bh", "bonferroni", "holm"]
TESTS = ("fisher", "chi2")
CORRECTIONS = ("fdr_bh", "bonferroni", "holm")
_FISHER_RTOL = 1e-7  # tables this close in probability to the observed one count as "as extreme" (R's rule)
_PATTERN_SEP = " > "

__all__ += ["discriminative_patterns", "pattern_features", "pattern_condition", "adjust_pvalues",
            "TESTS", "CORRECTIONS"]


def _encode_named(sequences: Any, name: str) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """:func:`_encode`, with errors naming the argument (``sequences_b[3]`` rather than ``sequences[3]``)."""
    try:
        return _encode(sequences)
    except ParameterError as e:
        new = name + e.name[len("sequences"):] if e.name.startswith("sequences") else e.name
        raise ParameterError(new, e.value, e.allowed, message=f"In {name!r}: {e}") from None


def _as_patterns(patterns: Any, name: str = "patterns") -> list[tuple[Any, ...]]:
    """Validate patterns (a frame with a ``pattern`` column, a Series or a list) into tuples."""
    if isinstance(patterns, pd.DataFrame):
        if "pattern" not in patterns.columns:
            cols = [str(c) for c in patterns.columns]
            raise ParameterError(name, "DataFrame", message=f"Parameter {name!r} is a DataFrame without a 'pattern' "
                                 "column (pass the output of mine_patterns or discriminative_patterns);"
                                 f"{did_you_mean('pattern', cols)} Columns: {format_allowed(cols)}")
        patterns = patterns["pattern"].tolist()
    elif isinstance(patterns, pd.Series):
        patterns = patterns.tolist()
    elif isinstance(patterns, (str, bytes)) or not isinstance(patterns, (Sequence, np.ndarray)):
        raise ParameterError(name, patterns, "a list of patterns (tuples of items) or a frame with a 'pattern' column",
                             message=f"Parameter {name!r} must be a list of patterns (tuples of items) or a frame "
                             f"with a 'pattern' column, got {type(patterns).__name__} {_short.repr(patterns)}")
    out: list[tuple[Any, ...]] = []
    for i, p in enumerate(patterns):
        if isinstance(p, (str, bytes)) or not isinstance(p, (list, tuple, np.ndarray)):
            why = "a string is not a pattern; wrap it in a tuple, ('a',)" if isinstance(p, (str, bytes)) \
                else "expected a tuple of items"
            raise ParameterError(f"{name}[{i}]", p, "a non-empty tuple of items",
                                 message=f"Parameter '{name}[{i}]' is {type(p).__name__} {_short.repr(p)}: {why}")
        p = tuple(p.tolist() if isinstance(p, np.ndarray) else p)
        if not p:
            raise ParameterError(f"{name}[{i}]", p, "a non-empty tuple of items",
                                 message=f"Parameter '{name}[{i}]' is an empty pattern; a pattern has at least one item")
        for item in p:
            if _unhashable(item) or _is_missing(item):
                raise ParameterError(f"{name}[{i}]", p, "a tuple of hashable, non-missing items",
                                     message=f"Parameter '{name}[{i}]' = {_short.repr(p)} holds {_short.repr(item)}; "
                                     "items must be hashable and not missing")
        out.append(p)
    return out


def _pattern_csr(patterns: list[tuple[Any, ...]], code_of: dict[Any, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the patterns' codes in lexicographic order (items of no sequence get -1), and that order."""
    coded = [tuple(code_of.get(x, -1) for x in p) for p in patterns]
    order = np.array(sorted(range(len(coded)), key=coded.__getitem__), dtype=np.int64)
    lengths = np.fromiter((len(coded[i]) for i in order.tolist()), dtype=np.int64, count=len(order))
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((c for i in order.tolist() for c in coded[i]), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets, order


def _containment(codes: np.ndarray, offsets: np.ndarray, n_items: int,
                 pat: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                 matrix: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Support of each pattern (input order) in the CSR database, and optionally the 0/1 matrix.

    The patterns' prefix trie is walked once with pseudo-projections
    (:mod:`segkit._subseq_numba`); ``matrix`` gives the ``(n_sequences, n_patterns)`` uint8
    containment matrix, columns in input order.
    """
    from . import _subseq_numba as kernels

    pat_flat, pat_offsets, order = pat
    n_seq, n_pat = len(offsets) - 1, len(order)
    if n_pat == 0:
        return np.zeros(0, dtype=np.int64), (np.zeros((n_seq, 0), dtype=np.uint8) if matrix else None)
    parent, item, terminal = kernels.build_trie(pat_flat, pat_offsets)
    # the column each node fills: the (input) index of the first pattern it spells
    write_node = np.full(len(parent), -1, dtype=np.int64)
    write_node[terminal[::-1]] = order[::-1]
    out = np.zeros((n_seq, n_pat), dtype=np.uint8) if matrix else np.zeros((1, 1), dtype=np.uint8)
    node_support = kernels.contains(codes.astype(np.int32, copy=False), offsets.astype(np.int64, copy=False),
                                    int(n_items), parent, item, write_node, out, bool(matrix))
    support = np.empty(n_pat, dtype=np.int64)
    support[order] = node_support[terminal]
    if not matrix:
        return support, None
    first = write_node[terminal]  # input index of the column each pattern's node filled
    dup = np.flatnonzero(first != order)
    if len(dup):  # a repeated pattern: copy the column of its first copy
        out[:, order[dup]] = out[:, first[dup]]
    return support, out


def adjust_pvalues(p_values: Any, method: Correction = "fdr_bh") -> np.ndarray:
    """Correct p-values for multiple testing.

    Parameters
    ----------
    p_values : array-like of float
        P-values in [0, 1], one per test (NaN is not allowed).
    method : {"fdr_bh", "bonferroni", "holm"}, default="fdr_bh"
        ``"fdr_bh"``: Benjamini-Hochberg q-values, ``min(1, min_{j >= i} m p_(j) / j)`` over the
        sorted p-values (controls the false discovery rate; equal to
        :func:`scipy.stats.false_discovery_control` with ``method="bh"``). ``"bonferroni"``:
        ``min(1, m p)``. ``"holm"``: Holm's step-down, ``min(1, max_{j <= i} (m - j + 1) p_(j))``
        (both control the family-wise error rate; Holm is uniformly more powerful).

    Returns
    -------
    ndarray of float
        Adjusted p-values, in the input order.

    Raises
    ------
    ParameterError
        Unknown ``method``, or p-values that are not numbers in [0, 1].

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(4).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_pvalues([0.01, 0.04, 0.03], "fdr_bh").round(4).tolist()
    [0.03, 0.04, 0.04]
    """
    if not isinstance(method, str) or method not in CORRECTIONS:
        raise ParameterError("method", method, list(CORRECTIONS))
    try:
        p = np.asarray(p_values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ParameterError("p_values", p_values, "numbers in [0, 1]") from None
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        bad = p[np.isnan(p) | (p < 0) | (p > 1)][0]
        raise ParameterError("p_values", float(bad), "numbers in [0, 1]",
                             message=f"Parameter 'p_values' holds {float(bad)!r}; p-values are numbers in [0, 1]")
    m = len(p)
    if m == 0:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    rank = np.arange(1, m + 1, dtype=np.float64)
    if method == "holm":
        adj = np.minimum(1.0, np.maximum.accumulate(ranked * (m - rank + 1)))
    else:  # fdr_bh
        adj = np.minimum(1.0, np.minimum.accumulate((ranked * m / rank)[::-1])[::-1])
    out = np.empty(m, dtype=np.float64)
    out[order] = adj
    return out


def _fisher_pvalues(ka: np.ndarray, kb: np.ndarray, na: int, nb: int) -> np.ndarray:
    """Two-sided Fisher exact p-values of the tables [[ka, na - ka], [kb, nb - kb]], vectorized.

    The p-value sums the hypergeometric probabilities of every table with the observed margins
    that is at most as probable as the observed one (relative tolerance 1e-7). The
    distribution is computed once per distinct column margin ``ka + kb``.
    """
    from scipy.stats import hypergeom

    n = na + nb
    k = ka + kb
    out = np.ones(len(ka), dtype=np.float64)
    for total in np.unique(k).tolist():
        rows = np.flatnonzero(k == total)
        if total == 0 or total == n:  # a zero margin: every table is the observed one
            continue
        lo, hi = max(0, total - nb), min(total, na)
        xs = np.arange(lo, hi + 1)
        pmf = hypergeom.pmf(xs, n, na, total)
        sorted_pmf = np.sort(pmf)
        cum = np.cumsum(sorted_pmf)
        observed = pmf[ka[rows] - lo]
        idx = np.searchsorted(sorted_pmf, observed * (1 + _FISHER_RTOL), side="right")
        out[rows] = np.minimum(1.0, cum[idx - 1])
    return out


def _chi2_pvalues(ka: np.ndarray, kb: np.ndarray, na: int, nb: int) -> np.ndarray:
    """Chi-squared p-values of the 2x2 tables with Yates' continuity correction, vectorized.

    The same statistic as :func:`scipy.stats.chi2_contingency` (``correction=True``); tables
    with a zero margin (a pattern in every sequence) get p = 1.
    """
    from scipy.stats import chi2

    obs = np.stack([ka, na - ka, kb, nb - kb], axis=1).astype(np.float64)
    n = float(na + nb)
    col = np.stack([ka + kb, (na - ka) + (nb - kb)], axis=1).astype(np.float64)
    exp = np.concatenate([col * na / n, col * nb / n], axis=1)
    ok = (exp > 0).all(axis=1)
    diff = exp - obs
    adjusted = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(ok, ((adjusted - exp) ** 2 / np.where(exp > 0, exp, 1.0)).sum(axis=1), 0.0)
    return np.where(ok, chi2.sf(stat, 1), 1.0)


def _check_labels(labels: Any) -> tuple[str, str]:
    if (not isinstance(labels, (tuple, list)) or len(labels) != 2
            or not all(isinstance(x, str) and x for x in labels) or labels[0] == labels[1]):
        raise ParameterError("labels", labels, "two different non-empty strings, e.g. ('buyers', 'abandoners')")
    return str(labels[0]), str(labels[1])


def _empty_discriminative(a: str, b: str) -> pd.DataFrame:
    cols: dict[str, Any] = {"pattern": pd.Series([], dtype=object), "length": pd.Series([], dtype=np.int64)}
    for name in (f"support_{a}", f"support_{b}"):
        cols[name] = pd.Series([], dtype=np.int64)
    for name in (f"share_{a}", f"share_{b}", "difference", "lift", "odds_ratio", "p_value", "q_value"):
        cols[name] = pd.Series([], dtype=np.float64)
    cols["significant"] = pd.Series([], dtype=bool)
    cols["enriched_in"] = pd.Series([], dtype=object)
    return pd.DataFrame(cols)


def discriminative_patterns(
    sequences_a: Sequence[Sequence[Hashable]],
    sequences_b: Sequence[Sequence[Hashable]],
    min_support: int | float,
    *,
    labels: tuple[str, str] = ("a", "b"),
    min_len: int = 1,
    max_len: int | None = None,
    test: Test = "fisher",
    correction: Correction = "fdr_bh",
    alpha: float = 0.05,
    engine: Engine = "auto",
) -> pd.DataFrame:
    """Find the sequential patterns whose share differs between two cohorts of sequences.

    Candidates are the patterns frequent in *either* cohort (:func:`mine_patterns` on each, with
    ``min_support`` applied to each cohort on its own, then the union). Every candidate's
    support is then counted exactly in both cohorts, and its 2x2 table (sequences that contain
    it or not, in cohort a or b) is tested; p-values are corrected for the number of candidates.

    Parameters
    ----------
    sequences_a, sequences_b : list of list of hashable, or Sequences
        The two cohorts, e.g. :func:`segkit.sequences.build_sequences` of buyers' and of cart
        abandoners' sessions. Each needs at least one sequence.
    min_support : int or float
        A count of sequences, or a fraction (0, 1] of each cohort's size (``ceil(f * n)``, as in
        :func:`mine_patterns`): a pattern is a candidate when it reaches it in a or in b.
    labels : tuple of two str, default=("a", "b")
        Cohort names used in the column names (``support_a``, ``share_b``, ...) and in
        ``enriched_in``.
    min_len, max_len : int
        Pattern lengths to consider. Bound ``max_len`` on long sequences: the number of frequent
        patterns grows fast with their length.
    test : {"fisher", "chi2"}, default="fisher"
        Two-sided Fisher's exact test (exact for any count; like :func:`scipy.stats.fisher_exact`,
        with R's 1e-7 tolerance for tables as probable as the observed one), or the chi-squared
        test with Yates' continuity correction (like :func:`scipy.stats.chi2_contingency`). A
        pattern contained in every sequence of both cohorts gets p = 1.
    correction : {"fdr_bh", "bonferroni", "holm"}, default="fdr_bh"
        Multiple-testing correction over all candidates (see :func:`adjust_pvalues`).
    alpha : float, default=0.05
        ``significant`` is ``q_value <= alpha``.
    engine : {"auto", "fast", "prefixspan", "spark"}, default="auto"
        Mining engine of each cohort's candidates (see :func:`mine_patterns`; ``"spark"`` mines
        both cohorts on Spark, with the same candidates as ``"fast"``); supports in both cohorts
        are always counted by segkit's compiled counter.

    Returns
    -------
    DataFrame
        One row per candidate: ``pattern`` (tuple), ``length``, ``support_{a}``,
        ``support_{b}`` (sequences containing it), ``share_{a}``, ``share_{b}`` (support / cohort
        size), ``difference`` (``share_a - share_b``), ``lift``, ``odds_ratio``, ``p_value``,
        ``q_value``, ``significant`` and ``enriched_in`` (the label with the larger share).
        Sorted by q-value, then by ``|difference|`` descending, then pattern. ``attrs`` holds
        ``labels``, ``n_a``, ``n_b``, ``min_support`` (the two absolute thresholds), ``test``,
        ``correction``, ``alpha`` and ``n_tests``.

    Raises
    ------
    ParameterError
        An empty cohort, bad labels, unknown ``test`` / ``correction``, ``alpha`` outside (0, 1),
        and whatever :func:`mine_patterns` rejects (the message names the cohort).

    Notes
    -----
    ``lift`` is the ratio of the two shares, each estimated as ``(support + 0.5) / (n + 1)``
    (the Jeffreys estimate), so it stays finite when a pattern is absent from cohort b and is
    close to ``share_a / share_b`` when both supports are large. ``odds_ratio`` is the sample
    odds ratio ``(ka (nb - kb)) / ((na - ka) kb)``, with 0.5 added to every cell (Haldane-Anscombe)
    for tables with an empty cell, so it is always finite and positive.

    The candidates are chosen by their support in the same data the tests use, and patterns
    that share items are strongly dependent; treat q-values as a ranking for exploration, and
    confirm a finding on held-out data.

    Examples
    --------
    >>> buyers = [["search", "product", "cart", "checkout"]] * 6 + [["home", "product"]] * 4
    >>> abandoners = [["search", "product", "cart"]] * 3 + [["home", "product", "cart"]] * 7
    >>> res = discriminative_patterns(buyers, abandoners, 0.3, labels=("buyers", "abandoners"), max_len=2)
    >>> res[["pattern", "support_buyers", "support_abandoners", "q_value", "significant"]].head(3).round(4)
                pattern  support_buyers  support_abandoners  q_value  significant
    0      (home, cart)               0                   7   0.0282         True
    1  (cart, checkout)               6                   0   0.0282         True
    2       (checkout,)               6                   0   0.0282         True
    """
    a, b = _check_labels(labels)
    if not isinstance(test, str) or test not in TESTS:
        raise ParameterError("test", test, list(TESTS))
    if not isinstance(correction, str) or correction not in CORRECTIONS:
        raise ParameterError("correction", correction, list(CORRECTIONS))
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not (0.0 < float(alpha) < 1.0):
        raise ParameterError("alpha", alpha, "a number in (0, 1)")
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ParameterError("engine", engine, list(ENGINES))
    codes_a, off_a, items_a = _encode_named(sequences_a, "sequences_a")
    codes_b, off_b, items_b = _encode_named(sequences_b, "sequences_b")
    n_a, n_b = len(off_a) - 1, len(off_b) - 1
    for name, n in (("sequences_a", n_a), ("sequences_b", n_b)):
        if n == 0:
            raise ParameterError(name, [], message=f"Parameter {name!r} holds no sequence; each cohort needs at least one")
    list_a = list(sequences_a)
    list_b = list(sequences_b)
    mined = []
    for name, seqs in (("sequences_a", list_a), ("sequences_b", list_b)):
        try:
            mined.append(mine_patterns(seqs, min_support, min_len=min_len, max_len=max_len, engine=engine))
        except ParameterError as e:
            if e.name.startswith("sequences"):
                raise ParameterError(name + e.name[len("sequences"):], e.value, e.allowed,
                                     message=f"In {name!r}: {e}") from None
            raise
    thresholds = {a: mined[0].attrs["min_support"], b: mined[1].attrs["min_support"]}
    candidates = list(dict.fromkeys(mined[0]["pattern"].tolist() + mined[1]["pattern"].tolist()))
    attrs = {"labels": (a, b), "n_a": n_a, "n_b": n_b, "min_support": thresholds, "test": test,
             "correction": correction, "alpha": float(alpha), "n_tests": len(candidates)}
    if not candidates:
        out = _empty_discriminative(a, b)
        out.attrs = attrs
        return out

    # one vocabulary for both cohorts; supports counted exactly in each
    items = _item_order(list(dict.fromkeys(items_a + items_b)))
    code_of = {item: c for c, item in enumerate(items)}
    recode_a = np.array([code_of[x] for x in items_a], dtype=np.int32)
    recode_b = np.array([code_of[x] for x in items_b], dtype=np.int32)
    pat = _pattern_csr(candidates, code_of)
    ka, _ = _containment(recode_a[codes_a] if len(codes_a) else codes_a, off_a, len(items), pat)
    kb, _ = _containment(recode_b[codes_b] if len(codes_b) else codes_b, off_b, len(items), pat)

    share_a, share_b = ka / n_a, kb / n_b
    lift = ((ka + 0.5) / (n_a + 1)) / ((kb + 0.5) / (n_b + 1))
    cells = np.stack([ka, n_a - ka, kb, n_b - kb], axis=1).astype(np.float64)
    cells = np.where((cells == 0).any(axis=1, keepdims=True), cells + 0.5, cells)
    odds = (cells[:, 0] * cells[:, 3]) / (cells[:, 1] * cells[:, 2])
    p = _fisher_pvalues(ka, kb, n_a, n_b) if test == "fisher" else _chi2_pvalues(ka, kb, n_a, n_b)
    q = adjust_pvalues(p, correction)
    diff = share_a - share_b
    out = pd.DataFrame({
        "pattern": pd.Series(candidates, dtype=object),
        "length": np.array([len(c) for c in candidates], dtype=np.int64),
        f"support_{a}": ka.astype(np.int64),
        f"support_{b}": kb.astype(np.int64),
        f"share_{a}": share_a,
        f"share_{b}": share_b,
        "difference": diff,
        "lift": lift,
        "odds_ratio": odds,
        "p_value": p,
        "q_value": q,
        "significant": q <= float(alpha),
        "enriched_in": pd.Series(np.where(diff > 0, a, np.where(diff < 0, b, None)), dtype=object),
    })
    rank = np.empty(len(candidates), dtype=np.int64)
    rank[pat[2]] = np.arange(len(candidates))  # position in the pattern order
    order = np.lexsort((rank, -np.abs(diff), q))
    out = out.iloc[order].reset_index(drop=True)
    out.attrs = attrs
    return out


def _sequence_index(sequences: Any, ids: Any, n_seq: int) -> pd.Index:
    if ids is None:
        frame = getattr(sequences, "ids", None)
        if isinstance(frame, pd.DataFrame) and "sequence_id" in frame.columns and len(frame) == n_seq:
            return pd.Index(frame["sequence_id"].to_numpy(), name="sequence_id")
        return pd.RangeIndex(n_seq, name="sequence")
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise ParameterError("ids", ids, f"None or {n_seq} labels, one per sequence")
    if len(ids) != n_seq:
        raise ParameterError("ids", f"{len(ids)} labels",
                             message=f"Parameter 'ids' has {len(ids)} labels but there are {n_seq} sequences; "
                             "pass one label per sequence")
    idx = pd.Index(ids.to_numpy() if isinstance(ids, (pd.Series, pd.Index)) else list(ids))
    return idx.rename(getattr(ids, "name", None) or "sequence_id")


def pattern_label(pattern: Sequence[Hashable]) -> str:
    """The column label of a pattern in :func:`pattern_features`: its items joined by ``" > "``.

    Examples
    --------
    >>> pattern_label(("search", "add_to_cart"))
    'search > add_to_cart'
    """
    return _PATTERN_SEP.join(str(x) for x in pattern)


__all__ += ["pattern_label"]


def pattern_features(
    sequences: Sequence[Sequence[Hashable]],
    patterns: Any,
    *,
    ids: Any = None,
    binary: bool = True,
) -> pd.DataFrame:
    """A sequence-by-pattern matrix: whether (or how often) each sequence contains each pattern.

    Use it as model features, or to select the sequences behind a pattern.

    Parameters
    ----------
    sequences : list of list of hashable, or Sequences
        The sequences (a :class:`segkit.sequences.Sequences` gives its ``sequence_id`` index).
    patterns : DataFrame, Series or list of tuples
        The patterns: the ``pattern`` column of :func:`mine_patterns` or
        :func:`discriminative_patterns` output, or tuples of items. Items that occur in no
        sequence are allowed (their patterns are never contained). No pattern may repeat.
    ids : array-like, optional
        Row labels, one per sequence. Default: ``sequences.ids["sequence_id"]`` for a
        ``Sequences``, else ``0 .. n - 1``.
    binary : bool, default=True
        ``True``: 1 when the sequence contains the pattern (in order, gaps allowed), else 0
        (``uint8``). ``False``: the number of non-overlapping occurrences (``int64``), counted
        by greedy matching restarted after each complete occurrence (``("a", "b")`` occurs twice
        in ``a b a b`` and once in ``a a b b``).

    Returns
    -------
    DataFrame
        One row per sequence, one column per pattern, labelled by :func:`pattern_label`
        (``"search > add_to_cart"``); ``attrs["patterns"]`` maps each label to its tuple.

    Raises
    ------
    ParameterError
        Bad sequences or patterns (a string instead of a tuple, an empty pattern, a repeated
        pattern or label), ``ids`` of the wrong length, a non-boolean ``binary``.

    Examples
    --------
    >>> seqs = [["a", "b", "a", "b"], ["b", "a"], ["a", "a", "b", "b"]]
    >>> pattern_features(seqs, [("a", "b"), ("b",)]).to_dict("list")
    {'a > b': [1, 0, 1], 'b': [1, 1, 1]}
    >>> pattern_features(seqs, [("a", "b")], binary=False)["a > b"].tolist()
    [2, 0, 1]
    """
    binary = _check_bool("binary", binary)
    codes, offsets, items = _encode(sequences)
    pats = _as_patterns(patterns)
    labels = [pattern_label(p) for p in pats]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label in seen:
            raise ParameterError(f"patterns[{i}]", pats[i],
                                 message=f"Pattern patterns[{i}] = {_short.repr(pats[i])} repeats the label {label!r} "
                                 f"of patterns[{seen[label]}]; every pattern needs its own column")
        seen[label] = i
    index = _sequence_index(sequences, ids, len(offsets) - 1)
    code_of = {item: c for c, item in enumerate(items)}
    pat = _pattern_csr(pats, code_of)
    _, mat = _containment(codes, offsets, len(items), pat, matrix=True)
    assert mat is not None
    if not binary and len(pats):
        from . import _subseq_numba as kernels

        pat_flat, pat_offsets, order = pat
        counts = np.zeros(mat.shape, dtype=np.int64)
        # the kernel works on the sorted patterns; put the matrix in that order and back
        sorted_counts = np.zeros(mat.shape, dtype=np.int64)
        kernels.occurrences(codes, offsets.astype(np.int64), pat_flat, pat_offsets,
                            np.ascontiguousarray(mat[:, order]), sorted_counts)
        counts[:, order] = sorted_counts
        values: np.ndarray = counts
    else:
        values = mat
    out = pd.DataFrame(values, index=index, columns=pd.Index(labels, dtype=object))
    out.attrs["patterns"] = dict(zip(labels, pats))
    return out


def pattern_condition(
    pattern: Sequence[str],
    *,
    item: str = "event",
    within: str | pd.Timedelta | None = None,
    mode: Literal["eventually", "directly"] = "eventually",
    scope: Literal["same_session", "any_session"] = "same_session",
) -> Then | Did:
    """A :mod:`segkit.segments` condition that holds for users whose events show the pattern.

    Turns a pattern found on :func:`segkit.sequences.build_sequences` output into a segment
    condition (:func:`segkit.segments.then`), so a discriminative pattern becomes a segment::

        Segment("checkout_path", pattern_condition(("cart_view", "checkout_start")))

    Parameters
    ----------
    pattern : tuple of str
        The items, e.g. a ``pattern`` of :func:`discriminative_patterns`.
    item : {"event", "page_type", "event+category", "flow"}, default="event"
        The granularity the sequences were built with (``Sequences.item``): ``"event"`` items
        are event names; ``"page_type"`` items are page types of ``page_view`` events
        (``step("page_view", where={"page_type": x})``); ``"flow"`` items are either (the
        shopping actions of :data:`segkit.sequences.FLOW_EVENTS` by name, anything else a page
        type); ``"event+category"`` items are
        ``"event:category"`` (``step(event, where={"category": category})``, split at the first
        colon) or a bare event name (any category). Other columns have no step form.
    within : str or Timedelta, optional
        Longest time from the first to the last step (patterns of two or more items only).
    mode : {"eventually", "directly"}, default="eventually"
        ``"eventually"`` matches a pattern's gaps-allowed definition. ``"directly"`` asks for
        consecutive events (patterns of two or more items only).
    scope : {"same_session", "any_session"}, default="same_session"
        ``"same_session"`` for patterns mined on sessions (``by="session"``);
        ``"any_session"`` for patterns mined per user.

    Returns
    -------
    Then or Did
        ``then(*steps, within=, mode=, scope=)`` for two or more items; ``did(step)`` for one.

    Raises
    ------
    ParameterError
        An empty pattern or one that is not a tuple of strings, an ``item`` without a step form,
        ``within`` or ``mode="directly"`` with a one-item pattern, and whatever
        :func:`segkit.segments.then` rejects (a bad duration, mode or scope).

    Notes
    -----
    The condition follows :mod:`segkit.segments` semantics, which can be looser than
    containment in the sequences: events at the same timestamp count as following each other in
    either order; a bare event name of ``"event+category"`` matches the event with any category;
    with ``collapse_repeats=True`` or ``max_gap`` sequences, a repeated item or a pattern spanning
    a gap can match where the sequences do not; and ``"directly"`` looks at every event of the
    session, including those the item skipped (with ``item="page_type"``, a scroll between two
    page views breaks "directly").

    Examples
    --------
    >>> pattern_condition(("search", "add_to_cart"), within="1h").to_dict()
    {'then': ['search', 'add_to_cart'], 'mode': 'eventually', 'scope': 'same_session', 'within': '1h'}
    >>> pattern_condition(("product",), item="page_type").to_dict()
    {'did': {'event': 'page_view', 'where': {'page_type': 'product'}}, 'at_least': 1}
    """
    from .segments import did, step, then

    if isinstance(pattern, (str, bytes)) or not isinstance(pattern, (list, tuple)) or not pattern:
        raise ParameterError("pattern", pattern, "a non-empty tuple of str",
                             message=f"Parameter 'pattern' got {_short.repr(pattern)}; expected a non-empty tuple of "
                             "items such as ('search', 'add_to_cart')" + (" (wrap a single item in a tuple)"
                                                                         if isinstance(pattern, str) else ""))
    for x in pattern:
        if not isinstance(x, str) or not x:
            raise ParameterError("pattern", tuple(pattern), "a non-empty tuple of str",
                                 message=f"Parameter 'pattern' holds {x!r}; items are event names, page types or "
                                 "'event:category' strings")
    kinds = ("event", "page_type", "event+category", "flow")
    if not isinstance(item, str) or item not in kinds:
        raise ParameterError("item", item, list(kinds),
                             message=f"Parameter 'item' got {item!r}; only {format_allowed(kinds)} items have a "
                             "segment step form" + (did_you_mean(item, kinds) if isinstance(item, str) else ""))
    for name, value, allowed in (("mode", mode, ("eventually", "directly")), ("scope", scope, ("same_session", "any_session"))):
        if not isinstance(value, str) or value not in allowed:
            raise ParameterError(name, value, list(allowed))
    if item == "event":
        steps = [step(x) for x in pattern]
    elif item == "page_type":
        steps = [step("page_view", where={"page_type": x}) for x in pattern]
    elif item == "flow":
        from .sequences import FLOW_EVENTS

        steps = [step(x) if x in FLOW_EVENTS else step("page_view", where={"page_type": x}) for x in pattern]
    else:
        steps = []
        for x in pattern:
            ev, sep, cat = x.partition(":")
            steps.append(step(ev, where={"category": cat}) if sep and cat else step(ev))
    if len(steps) == 1:
        if within is not None:
            raise ParameterError("within", within, message=f"Parameter 'within' got {within!r} but the pattern has "
                                 "one item; a window bounds the time from the first to the last step")
        if mode != "eventually":
            raise ParameterError("mode", mode, message=f"Parameter 'mode' got {mode!r} but the pattern has one item; "
                                 "'directly' is about consecutive steps")
        return did(steps[0])
    return then(*steps, within=within, mode=mode, scope=scope)


__all__ = list(dict.fromkeys(__all__))
