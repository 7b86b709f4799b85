"""The cleaning pipeline and its ledger: nothing is lost silently.

:func:`clean_events` runs, in order, on the Ibis/DuckDB engine:

1. ``taxonomy`` — drop events whose raw name the taxonomy does not know (optional).
2. ``bots`` — drop every event of visitors :func:`segkit.bots.filter_bots` flags.
3. ``duplicates`` — drop exact duplicates, then near duplicates within a tolerance.
4. ``devices`` — normalize device labels to Mobile / Desktop / Tablet / Bot / Other (labels and
   user-agent parsing).
5. ``urls`` — normalize URLs (scheme, host, trailing slash, query parameters).
6. ``page_types`` — fill missing page types from ordered URL rules.
7. ``missing`` — per-column policies: fill, drop, mode, median, mean or a model.

Every dropped row goes to the quarantine with its step and reason; every changed value is
counted. The ledger holds one row per (step, action, reason) and balances exactly:
``rows_in == rows_out + rows dropped``. Rows the reader rejected can be passed in so the ledger
starts from the raw input.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .bots import filter_bots
from .engine import ROW_COL, Data, Output, backend_of, drop_temp, hash64, materialize, numbered, order_free, remember_kept, to_pandas
from .errors import ParameterError, SegkitError, check_columns
from .missing import DropPolicy, FillPolicy, MeanPolicy, MedianPolicy, ModePolicy, ModelPolicy, impute_missing, parse_policies
from .params import CleaningParams
from .schema import CANONICAL_COLUMNS
from .standardize import assign_page_types, find_duplicates, normalize_devices, normalize_urls

__all__ = ["CleanResult", "clean_events", "LEDGER_COLUMNS"]

LEDGER_COLUMNS = ["step", "action", "reason", "rows"]
_ROW = ROW_COL
_COUNTER = itertools.count()
_STANDARDIZED = {"device", "device_raw", "device_source", "page", "page_raw", "page_type", "page_type_source"}
_STEP_ORDER = ["read", "taxonomy", "bots", "duplicates", "devices", "urls", "page_types", "missing"]


@dataclass(frozen=True)
class CleanResult:
    """What :func:`clean_events` returns.

    Attributes
    ----------
    events : pandas.DataFrame or ibis.Table
        The clean events (input order for pandas input).
    quarantine : pandas.DataFrame or ibis.Table
        Every dropped row with ``step``, ``reason`` and ``detail`` (an Ibis table when
        ``output="ibis"``: the dropped rows stay in DuckDB).
    ledger : pandas.DataFrame
        ``step``, ``action`` (``dropped`` / ``changed``), ``reason``, ``rows``.
    bots : pandas.DataFrame
        One row per visitor with the bot signals, ``score``, ``is_bot`` and ``reasons``.
    rows_in, rows_out : int
        Rows that came in (reader rejections included) and rows that came out.
    imputation : pandas.DataFrame
        What each missing-data policy did (column, policy, rows_touched, value).
    """

    events: pd.DataFrame | ibis.Table
    quarantine: pd.DataFrame | ibis.Table
    ledger: pd.DataFrame
    bots: pd.DataFrame
    rows_in: int
    rows_out: int
    imputation: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rows_dropped(self) -> int:
        """Rows dropped by all steps."""
        return int(self.ledger.loc[self.ledger["action"] == "dropped", "rows"].sum())

    def check_balance(self) -> None:
        """Raise :class:`SegkitError` unless rows in == rows out + rows dropped."""
        if self.rows_in != self.rows_out + self.rows_dropped:
            raise SegkitError(
                f"Cleaning ledger does not balance: {self.rows_in:,} in != {self.rows_out:,} out + {self.rows_dropped:,} dropped"
            )

    def score_bots(self, truth: pd.DataFrame, *, user_col: str = "user_id", truth_col: str = "is_bot") -> dict[str, float]:
        """Precision, recall and F1 of the bot flags against a truth table (e.g. ``Shop.truth``).

        Visitors the bot step never saw (all their rows dropped earlier) count as not flagged.
        """
        from .bots import score_bots

        check_columns(truth.columns, [user_col, truth_col], what="truth")
        actual = truth.set_index(user_col)[truth_col].astype(bool)
        flags = self.bots.set_index("user_id")["is_bot"].astype(bool).reindex(actual.index, fill_value=False)
        return score_bots(flags, actual)

    def summary(self) -> dict[str, Any]:
        """Rounded headline numbers: rows in/out, dropped by step, bot visitors."""
        dropped = self.ledger[self.ledger["action"] == "dropped"].groupby("step")["rows"].sum()
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped_share": round(1 - self.rows_out / self.rows_in, 3) if self.rows_in else 0.0,
            "dropped_by_step": {k: int(v) for k, v in dropped.items()},
            "bot_visitors": int(self.bots["is_bot"].sum()) if len(self.bots) else 0,
            "visitors": int(len(self.bots)),
        }

    def waterfall(self) -> pd.DataFrame:
        """Rows remaining after each step (for the waterfall plot)."""
        dropped = self.ledger[self.ledger["action"] == "dropped"].groupby("step", sort=False)["rows"].sum()
        rows, remaining = [], self.rows_in
        rows.append({"step": "input", "dropped": 0, "remaining": remaining})
        for step in _STEP_ORDER:
            n = int(dropped.get(step, 0))
            remaining -= n
            rows.append({"step": step, "dropped": n, "remaining": remaining})
        return pd.DataFrame(rows)


class _Ledger:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.quarantine: list[pd.DataFrame] = []

    def count(self, step: str, action: str, reason: str, n: int) -> None:
        if n:
            self.rows.append({"step": step, "action": action, "reason": reason, "rows": int(n)})

    def drop(self, step: str, dropped: ibis.Table, reason: str | None = None, detail: str | None = None) -> None:
        """Count and keep dropped rows (executed once). ``dropped`` carries ``reason`` (and
        ``detail``) columns unless they are given as constants."""
        extra: dict[str, Any] = {"step": ibis.literal(step)}
        if reason is not None:
            extra["reason"] = ibis.literal(reason)
        if "detail" not in dropped.columns:
            extra["detail"] = ibis.literal(detail or "")
        frame = to_pandas(dropped.mutate(**extra))
        if len(frame):
            for r, n in frame["reason"].value_counts(sort=False).items():
                self.count(step, "dropped", str(r), int(n))
            self.quarantine.append(frame)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=LEDGER_COLUMNS)


class _Temps:
    """Temp tables one cleaning call creates on its engine; dropped at the end unless the result needs them."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.names: list[str] = []

    def table(self, expr: ibis.Table, name: str) -> ibis.Table:
        """Compute ``expr`` once into a temp table (only small or narrow tables go here)."""
        table_name = f"_segkit_clean_{name}_{next(_COUNTER)}"
        out = materialize(expr, con=self.con, name=table_name)
        self.names.append(table_name)
        return out

    def release(self) -> None:
        for name in self.names:
            drop_temp(self.con, name)
        self.names.clear()


def _blank(col: ibis.Value) -> ibis.BooleanValue:
    if col.type().is_string():
        return col.isnull() | (col.strip() == "")
    return col.isnull()


def _impute(t: ibis.Table, policies: Mapping[str, Any], ledger: _Ledger, temps: _Temps,
            unstandardized: ibis.Table | None = None) -> tuple[ibis.Table, pd.DataFrame, int, Callable[[ibis.Table], ibis.Table] | None]:
    """Apply the missing-data policies; returns the table, the report, the rows left and, when
    the policies only fill values, a function that applies the same fills to another table.

    Everything but a model policy stays lazy: one query counts the rows, the missing values per
    column and the mode / median / mean the fills need. When no policy column is one that
    standardization changed, that query reads ``unstandardized`` (the same rows without the
    lookup joins).
    """
    parsed = parse_policies(policies)
    check_columns(t.columns, list(parsed), what="events (cleaning.missing)")
    if any(isinstance(p, ModelPolicy) for p in parsed.values()):
        frame = to_pandas(t)
        res = impute_missing(frame, policies)
        if len(res.dropped):
            for r, n in res.dropped["reason"].value_counts(sort=False).items():
                ledger.count("missing", "dropped", str(r), int(n))
            ledger.quarantine.append(res.dropped.assign(step="missing", detail=""))
        for rec in res.report.itertuples():
            if rec.policy != "drop":
                ledger.count("missing", "changed", f"{rec.policy}_{rec.column}", rec.rows_touched)
        return temps.table(ibis.memtable(res.events), "missing"), res.report, len(res.events), None
    drops = [c for c, p in parsed.items() if isinstance(p, DropPolicy)]
    if drops:
        reason = ibis.cases(*[(_blank(t[c]), f"missing_{c}") for c in drops], else_=ibis.null("string"))
        t = t.mutate(_segkit_reason=reason)
        ledger.drop("missing", t.filter(t._segkit_reason.notnull()).rename(reason="_segkit_reason"))
        t = t.filter(t._segkit_reason.isnull()).drop("_segkit_reason")
    fill = [(col, policy) for col, policy in parsed.items() if not isinstance(policy, DropPolicy)]
    c = t
    if unstandardized is not None and not drops and all(
        col in unstandardized.columns and unstandardized[col].type() == t[col].type() and col not in _STANDARDIZED for col, _ in fill
    ):
        c = unstandardized
    aggs: dict[str, Any] = {"_n": c.count()}
    for i, (col, policy) in enumerate(fill):
        miss = _blank(c[col])
        aggs[f"_m{i}"] = miss.cast("int64").sum()
        if isinstance(policy, ModePolicy):
            aggs[f"_v{i}"] = c[col].mode(where=~miss)
        elif isinstance(policy, (MedianPolicy, MeanPolicy)):
            stat = c[col].median if isinstance(policy, MedianPolicy) else c[col].mean
            aggs[f"_v{i}"] = stat(where=~miss).cast("float64")
    stats = to_pandas(c.aggregate(**aggs)).iloc[0]
    report, fills = [], {}
    for i, (col, policy) in enumerate(fill):
        n = 0 if pd.isna(stats[f"_m{i}"]) else int(stats[f"_m{i}"])
        if isinstance(policy, FillPolicy):
            value: Any = policy.value
        elif isinstance(policy, (ModePolicy, MedianPolicy, MeanPolicy)):
            raw = stats[f"_v{i}"]
            value = None if (not n or pd.isna(raw)) else (raw if isinstance(policy, ModePolicy) else float(raw))
            if isinstance(value, np.generic):
                value = value.item()
        else:  # pragma: no cover - parse_policies admits nothing else
            raise ParameterError(f"cleaning.missing.{col}", policy)
        if n and value is None:
            raise ParameterError(f"cleaning.missing.{col}", policy.name, message=f"Cannot impute column {col!r}: it has no present values")
        if n:
            fills[col] = value
            ledger.count("missing", "changed", f"{policy.name}_{col}", n)
        report.append({"column": col, "policy": policy.name, "rows_touched": n, "value": value})
    for col in drops:
        report.insert(0, {"column": col, "policy": "drop", "rows_touched": sum(r["rows"] for r in ledger.rows if r["reason"] == f"missing_{col}"), "value": None})

    def apply(x: ibis.Table) -> ibis.Table:  # lazy: cheap to recompute, evaluated by whoever reads the result
        if not fills:
            return x
        return x.mutate(**{col: ibis.ifelse(_blank(x[col]), ibis.literal(v).cast(x[col].type()), x[col]) for col, v in fills.items()})

    return apply(t), pd.DataFrame(report, columns=["column", "policy", "rows_touched", "value"]), int(stats["_n"]), (None if drops else apply)


def _key_hash(t: ibis.Table, values: list[ibis.Value]) -> ibis.IntegerValue:
    return hash64(t, ibis.struct({f"k{i}": v for i, v in enumerate(values)}))


def _hashed_lookup(lookup: ibis.Table, key_cols: list[str], temps: _Temps, name: str) -> tuple[ibis.Table, bool]:
    """Store a lookup with a 64-bit hash of its key (``_h``); True when the hashes are distinct.

    Joining the events on one integer instead of null-safe equality of two strings is several
    times cheaper; the lookup holds every key the kept events have, so distinct hashes in the
    lookup make the join exact (otherwise the caller joins on the keys themselves).
    """
    stored = temps.table(lookup.mutate(_h=_key_hash(lookup, [lookup[c] for c in key_cols])), name)
    stats = to_pandas(stored.aggregate(n=stored.count(), u=stored._h.nunique())).iloc[0]
    return stored, int(stats["n"]) == int(stats["u"])


def _join_lookup(t: ibis.Table, lookup: ibis.Table, on: list[tuple[ibis.Value, str]], columns: list[str],
                 hashed: bool = False) -> ibis.Table:
    """Left-join a small lookup on null-safe key equality (or on its key hash ``_h`` when
    ``hashed``); ``columns`` of the lookup replace the same-named columns of ``t`` in place or
    are appended after them."""
    lk = lookup.rename(**{f"_lk_{c}": c for c in lookup.columns})
    if hashed:
        cond = [_key_hash(t, [expr for expr, _ in on]) == lk._lk__h]
    else:
        cond = [expr.identical_to(lk[f"_lk_{col}"]) for expr, col in on]
    j = t.left_join(lk, cond)
    picked = [lk[f"_lk_{c}"].name(c) if c in columns else j[c] for c in t.columns]
    return j.select(*picked, *[lk[f"_lk_{c}"].name(c) for c in columns if c not in t.columns])


def _lookup_counts(lookup: ibis.Table, conditions: dict[str, ibis.BooleanValue]) -> dict[str, int]:
    """Rows (sum of ``_n``) of a lookup table meeting each condition."""
    stats = to_pandas(lookup.aggregate(**{k: (lookup._n * cond.cast("int64")).sum() for k, cond in conditions.items()})).iloc[0]
    return {k: int(0 if pd.isna(stats[k]) else stats[k]) for k in conditions}


def _standardize(t: ibis.Table, params: CleaningParams, temps: _Temps, ledger: _Ledger) -> tuple[ibis.Table, Callable[[ibis.Table], ibis.Table]]:
    """Devices, URLs and page types, computed on small tables of distinct values joined back.

    Devices are looked up per (label, user agent), pages per (URL, tracked page type).

    The lookups carry the number of rows behind each distinct value (``_n``), so the ledger's
    "changed" counts come from them without another pass over the events. Returns the joined
    table and a function that joins the same lookups to another table with the same columns.
    """
    cols = list(t.columns)
    joins: list[Callable[[ibis.Table], ibis.Table]] = []
    base = t  # the distinct values come from the events before any lookup is joined
    if "device" in cols or "user_agent" in cols:
        keys = [c for c in ("device", "user_agent") if c in cols]
        # stored first: normalize_devices reads it twice (its distinct user agents, then the lookup)
        dist = temps.table(base.group_by(keys).aggregate(_n=base.count()), "device_values")
        dist = dist.mutate(_k_device=dist.device) if "device" in cols else dist.mutate(device=ibis.null("string"))
        ua = "user_agent" if "user_agent" in cols else None
        dev = normalize_devices(dist, user_agent_col=ua, labels=dict(params.device_labels) or None, output="ibis")
        new = ["device", *[c for c in dev.columns if c not in dist.columns]]
        dev, dev_hashed = _hashed_lookup(dev, ["_k_device" if c == "device" else c for c in keys], temps, "devices")
        joins.append(lambda x, dev=dev, keys=keys, new=new, hashed=dev_hashed: _join_lookup(
            x, dev, [(x[c], "_k_device" if c == "device" else c) for c in keys], new, hashed))
        t = joins[-1](t)
        counts = _lookup_counts(dev, {
            "label_normalized": dev.device_raw.notnull() & (dev.device_source == "label") & (dev.device_raw != dev.device),
            "from_user_agent": dev.device_source == "user_agent",
            "default_other": dev.device_source == "default",
        })
        for key, n in counts.items():
            ledger.count("devices", "changed", key, n)
    if "page" in cols:
        has_type = "page_type" in cols
        # stored first: the URL normalization reads the distinct pages several times (Spark
        # would repeat the scan, the filter and the grouping for each read)
        dist = temps.table(base.group_by(page=base.page, page_type=base.page_type if has_type else ibis.null("string"))
                           .aggregate(_n=base.count()), "page_values")
        dist = dist.mutate(_k_page=dist.page, _k_page_type=dist.page_type)
        pages = normalize_urls(dist, keep_params=params.url_keep_params, keep_host=params.url_keep_host, output="ibis")
        # every event with a URL gets the type of the page it happened on (a scroll or an
        # add-to-cart on a product page is a product-page event); features that count pages
        # count page views only
        pages = assign_page_types(pages, [tuple(r) for r in params.page_type_rules], output="ibis")
        pages, pages_hashed = _hashed_lookup(pages, ["_k_page"] + (["_k_page_type"] if has_type else []), temps, "pages")
        joins.append(lambda x, pages=pages, has_type=has_type, hashed=pages_hashed: _join_lookup(
            x, pages, [(x.page, "_k_page")] + ([(x.page_type, "_k_page_type")] if has_type else []),
            ["page", "page_raw", "page_type", "page_type_source"], hashed))
        t = joins[-1](t)
        counts = _lookup_counts(pages, {
            "url_normalized": pages.page_raw.notnull() & (pages.page_raw != pages.page),
            "filled_from_url": pages.page_type_source == "rule",
            "default_other": pages.page_type_source == "default",
        })
        ledger.count("urls", "changed", "url_normalized", counts["url_normalized"])
        ledger.count("page_types", "changed", "filled_from_url", counts["filled_from_url"])
        ledger.count("page_types", "changed", "default_other", counts["default_other"])

    def apply(x: ibis.Table) -> ibis.Table:
        for join in joins:
            x = join(x)
        return x

    return t, apply


def _check_input(table: ibis.Table) -> int:
    """The canonical guarantees cleaning relies on: required columns, parsed UTC times, no nulls.

    Returns the number of rows (one query).
    """
    from .errors import SchemaError

    check_columns(table.columns, ["user_id", "timestamp", "event"], what="events")
    ts_type = table.timestamp.type()
    if not ts_type.is_timestamp():
        raise SchemaError(
            [{"column": "timestamp", "check": "dtype", "count": None, "examples": None,
              "message": f"Column 'timestamp' has type {ts_type}, not parsed timestamps; read the events with "
                         "segkit.load_events (it parses ISO 8601, epochs and naive local times, and quarantines the rest)"}]
        )
    stats = to_pandas(table.aggregate(_n=table.count(), **{c: table[c].isnull().cast("int64").sum() for c in ("user_id", "timestamp", "event")}))
    n = int(stats["_n"].iloc[0])
    failures = []
    for col in ("user_id", "timestamp", "event"):
        k = int(stats[col].fillna(0).iloc[0])
        if k:
            what = "all" if k == n else f"{k:,} of {n:,}"
            failures.append({"column": col, "check": "null", "count": k, "examples": None,
                             "message": f"Column {col!r} is null in {what} rows; load_events quarantines such rows "
                                        "(LoadedEvents.rejected) before cleaning"})
    if failures:
        raise SchemaError(failures, title="Events are not canonical")
    return n


@order_free
def clean_events(
    events: Data,
    params: CleaningParams | Mapping[str, Any] | None = None,
    *,
    rejected: pd.DataFrame | None = None,
    output: Output = "pandas",
) -> CleanResult:
    """Clean a canonical, taxonomy-applied event log and account for every row.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Canonical events after :func:`segkit.apply_taxonomy` (``event_category`` is used by the
        ``taxonomy`` step when present).
    params : CleaningParams or mapping, optional
        The ``cleaning`` section of a parameter set; default: :class:`segkit.params.CleaningParams`.
    rejected : DataFrame, optional
        Rows the reader rejected (``LoadedEvents.rejected``, with ``reason``); they are counted in
        the ledger's ``read`` step and kept in the quarantine.
    output : {"pandas", "ibis"}, default="pandas"
        Clean events as a pandas DataFrame or as an Ibis table (stays in DuckDB).

    Returns
    -------
    CleanResult

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a", "a"], "event": ["page_view"] * 2, "page": ["/", "/"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00"] * 2, utc=True)})
    >>> res = clean_events(ev, {"missing": {}})  # the default fills referrer, which this log lacks
    >>> res.rows_in, res.rows_out, res.ledger["reason"].tolist()
    (2, 1, ['exact_duplicate', 'filled_from_url'])
    """
    if params is None:
        params = CleaningParams()
    elif isinstance(params, Mapping):
        from .params import _SECTIONS  # validated like a parameter file's cleaning section

        try:
            params = _SECTIONS["cleaning"].model_validate(dict(params))  # type: ignore[assignment]
        except Exception as exc:
            raise ParameterError("cleaning", dict(params), message=f"Invalid cleaning parameters: {exc}") from None
    assert isinstance(params, CleaningParams)
    if output not in ("pandas", "ibis"):
        raise ParameterError("output", output, ["pandas", "ibis"])
    table = numbered(events)  # input row numbers without copying the rows (see segkit.engine.numbered)
    n_input = _check_input(table)
    ledger = _Ledger()
    temps = _Temps(backend_of(table))
    if rejected is not None and len(rejected):
        check_columns(rejected.columns, ["reason"], what="rejected")
        q = rejected.assign(step="read", detail=rejected.get("raw", pd.Series("", index=rejected.index)).astype("string"))
        for r, n in q["reason"].value_counts(sort=False).items():
            ledger.count("read", "dropped", str(r), int(n))
        ledger.quarantine.append(q)
    rows_in = n_input + (0 if rejected is None else len(rejected))

    # Drop decisions are computed in one annotated pass over a narrow projection (row number,
    # visitor, time, a hash of the other compared columns): each row gets the reason of the
    # first step that drops it (taxonomy, then bots, then duplicates). Whole visitors are bots
    # and duplicates share every compared column, so this equals running the steps one after
    # another. Only the dropped rows' numbers and reasons are stored; the clean events are the
    # input minus those rows, read lazily, so the wide rows are never copied.
    drop_unknown = params.drop_unknown_events and "event_category" in table.columns
    bots = filter_bots(
        table.filter(table.event_category != "unknown") if drop_unknown else table,
        ip_list=params.bot_ip_list,
        ip_ranges=params.bot_ip_ranges,
        ua_patterns=params.bot_ua_patterns,
        max_events_per_minute=params.bot_max_events_per_minute,
        min_gap_cv=params.bot_min_gap_cv,
        max_session=params.bot_max_session,
        min_engagement_share=params.bot_min_engagement_share,
        max_ua_per_ip=params.bot_max_ua_per_ip,
        min_events_for_timing=params.bot_min_events_for_timing,
        drop_one_hit=params.bot_drop_one_hit,
        output="ibis",
    )
    visitors = bots.visitors if isinstance(bots.visitors, pd.DataFrame) else to_pandas(bots.visitors)
    flagged = visitors.loc[visitors["is_bot"], ["user_id", "reasons"]].rename(columns={"user_id": "_bot_user", "reasons": "_bot_reasons"})
    # the ledger's reason of a bot's rows (its first reason's name), once per visitor rather than per row
    flagged = flagged.assign(_bot_reason="bot_" + flagged["_bot_reasons"].astype("string").str.split("; ").str[0].str.split("=").str[0])
    bot_schema = {"_bot_user": "string", "_bot_reasons": "string", "_bot_reason": "string"}
    bot_table = ibis.memtable(flagged.astype(bot_schema), schema=bot_schema)

    compared = [c for c in CANONICAL_COLUMNS if c in table.columns and c != "timestamp"]  # find_duplicates' default
    # the duplicate check's window sorts only integers (row, key hash, time); the few flagged
    # rows are joined to the narrow (row, visitor, taxonomy flag, detail) projection
    keyed = table.select(_ROW, "timestamp", _key=ibis.struct({c: table[c] for c in compared}).hash())
    dup = find_duplicates(keyed, tolerance=params.dedup_tolerance, key_cols=["_key"], exact_cols=["_key", "timestamp"],
                          flagged_only=True, output="ibis")
    dup = dup.select(_dup_row=dup[_ROW], duplicate=dup.duplicate)
    narrow = table.select(
        _ROW, "user_id",
        _unknown=(table.event_category == "unknown") if drop_unknown else ibis.literal(False),
        _detail=table.raw_event if "raw_event" in table.columns else table.event,
    )
    d = narrow.left_join(bot_table, narrow.user_id == bot_table._bot_user)
    d = d.left_join(dup, d[_ROW] == dup._dup_row)
    # the cheap test first: the reasons (CASE, string splits) are built for dropped rows only
    d = d.filter(d._unknown | d._bot_reasons.notnull() | d.duplicate.notnull())
    d = d.select(
        _ROW,
        reason=ibis.cases(
            (d._unknown, "unknown_event"),
            (d._bot_reasons.notnull(), d._bot_reason),
            (d.duplicate.notnull(), d.duplicate),
            else_=ibis.null("string"),
        ),
        step=ibis.cases(
            (d._unknown, "taxonomy"), (d._bot_reasons.notnull(), "bots"), (d.duplicate.notnull(), "duplicates"), else_=ibis.null("string")
        ),
        detail=ibis.cases((d._unknown, d._detail), (d._bot_reasons.notnull(), d._bot_reasons), else_=ibis.literal("")),
    )
    decisions = temps.table(d, "dropped")
    counts = to_pandas(decisions.group_by(["step", "reason"]).aggregate(rows=decisions.count()))
    for step in ("taxonomy", "bots", "duplicates"):
        for rec in counts[counts["step"] == step].sort_values("reason").itertuples():
            ledger.count(step, "dropped", str(rec.reason), int(rec.rows))
    dropped = table.inner_join(decisions, _ROW)
    if output == "pandas":
        ledger.quarantine.append(to_pandas(dropped.order_by(_ROW)))
    t = kept = table.anti_join(decisions, _ROW)
    if backend_of(table).name == "pyspark":
        # stored on Spark, which would shuffle every event for this anti-join again in each of
        # the queries that read the kept rows (devices, pages, missing data, sessions)
        t = kept = temps.table(kept, "kept")

    # Standardization on distinct values: devices per (label, user agent), pages per (URL,
    # tracked page type). The small lookup tables carry row counts, so the
    # ledger's changes are counted on them; the events get one join per lookup.
    t, standardize = _standardize(t, params, temps, ledger)

    # 7. missing data
    imputation = pd.DataFrame(columns=["column", "policy", "rows_touched", "value"])
    fill: Callable[[ibis.Table], ibis.Table] | None = lambda x: x
    if params.missing:
        t, imputation, rows_out, fill = _impute(t, params.missing, ledger, temps, unstandardized=kept)
    else:  # every input row is either kept or has one decision (users and rows are unique in the joins)
        rows_out = n_input - int(counts["rows"].sum())
    quarantine: pd.DataFrame | ibis.Table
    if output == "pandas":
        quarantine = pd.concat(ledger.quarantine, ignore_index=True) if ledger.quarantine else pd.DataFrame(columns=["step", "reason", "detail"])
        quarantine = quarantine.drop(columns=[_ROW], errors="ignore")
        out: pd.DataFrame | ibis.Table = to_pandas(t.order_by(_ROW).drop(_ROW)).reset_index(drop=True)
        if len(out) != rows_out:  # pragma: no cover - a broken invariant, not a user error
            raise SegkitError(f"Cleaning kept {len(out):,} rows but the ledger expects {rows_out:,}")
        temps.release()
    else:
        quarantine = dropped.drop(_ROW)
        out = t  # keeps the input row number in ROW_COL: later steps join narrow results on it
        if fill is not None:
            # the same transforms on the unfiltered input: a later step whose narrow result holds
            # only kept rows (split_sessions) joins it to that instead of repeating the anti-join
            remember_kept(out, unfiltered=fill(standardize(table)), kept=kept)
    result = CleanResult(
        events=out,
        quarantine=quarantine,
        ledger=ledger.frame(),
        bots=visitors,
        rows_in=rows_in,
        rows_out=rows_out,
        imputation=imputation,
    )
    result.check_balance()
    return result


def access_log_bot_report(path: str | Any, params: CleaningParams | None = None) -> pd.DataFrame | None:
    """Clean a real access log with the same settings and count what the bot step finds.

    Returns one row per measure (lines, visitors, bot visitors and lines by first reason), or
    ``None`` when ``path`` does not exist (the shared sample data is optional).
    """
    from pathlib import Path

    from .io import load_events

    if path is None or not Path(path).exists():
        return None
    loaded = load_events(path, format="access_log")
    res = clean_events(loaded.events, params, rejected=loaded.rejected)
    rows = [
        {"measure": "log lines", "value": res.rows_in},
        {"measure": "visitors (IP + user agent)", "value": len(res.bots)},
        {"measure": "bot visitors", "value": int(res.bots["is_bot"].sum())},
    ]
    bots = res.ledger[(res.ledger["step"] == "bots")]
    rows += [{"measure": f"bot lines: {r.reason}", "value": int(r.rows)} for r in bots.itertuples()]
    rows.append({"measure": "lines kept", "value": res.rows_out})
    out = pd.DataFrame(rows).astype({"value": "int64"})
    out["share_of_lines"] = (out["value"] / res.rows_in).round(3)
    out.loc[out["measure"].str.startswith("visitors") | (out["measure"] == "bot visitors"), "share_of_lines"] = float("nan")
    return out


def quality_report(events: pd.DataFrame) -> pd.DataFrame:
    """Missing values of every canonical column the events have (see :func:`segkit.missing.missing_report`)."""
    from .missing import missing_report
    from .schema import CANONICAL_COLUMNS

    return missing_report(events, columns=[c for c in CANONICAL_COLUMNS if c in events.columns])


def compare_quality(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Share missing per column before and after cleaning (two :func:`quality_report` tables)."""
    for name, table in (("before", before), ("after", after)):
        check_columns(table.columns, ["column", "share_missing", "n_unique"], what=f"quality report ({name})")
    b = before.set_index("column")
    a = after.set_index("column")
    out = pd.DataFrame({"before": b["share_missing"], "after": a["share_missing"].reindex(b.index),
                        "distinct_before": b["n_unique"], "distinct_after": a["n_unique"].reindex(b.index)})
    return out.reset_index()


def pipeline_summary(result: CleanResult, sessions: pd.DataFrame, user_features: pd.DataFrame,
                     bot_scores: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Rounded headline numbers of notebook 02 (cleaning, sessions, features)."""
    out = result.summary()
    out["sessions"] = int(len(sessions))
    out["users_with_features"] = int(len(user_features))
    if "n_events" in sessions.columns:
        out["median_events_per_session"] = float(sessions["n_events"].median())
    if bot_scores:
        out["bot_precision"] = round(float(bot_scores["precision"]), 3)
        out["bot_recall"] = round(float(bot_scores["recall"]), 3)
    return out
