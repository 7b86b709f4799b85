"""The feature registry: every session and user feature, defined once, built as Ibis aggregations.

Each :class:`Feature` has a name, a level (``"session"`` or ``"user"``), a unit, a one-sentence
definition and the Ibis expression that computes it. :func:`feature_registry` lists them;
:func:`segkit.sessions.session_table` builds the session level and :func:`build_user_features`
the user level (sessions first, then users: the events are scanned once for sessions, once more
only for the search-term features). :func:`feature_percentiles` summarizes a feature table so
notebooks can set data-driven thresholds.

Conventions
-----------
* Durations are seconds (``_s``), ages are days (``_days``), shares are in [0, 1], scroll depth
  is percent. Counts of events are named after the event (``add_to_carts``), session flags start
  with ``is_``/``has_``.
* Content types (:data:`CONTENT_TYPES`): ``blog`` (blog page views or deep reads), ``product``
  and ``category`` (page views of that page type), ``reviews`` (review clicks), ``images``
  (product image clicks), ``video`` (video plays) and ``search`` (site searches). Home, cart and
  checkout pages are navigation, not content.
* Canonical columns beyond the keys are optional: when ``page_type``, ``device``, ``referrer``,
  ``revenue``, ``scroll_depth`` or ``search_query`` is missing, the features built from it are
  null (NaN), never an error; without ``engagement_ms``, ``engaged_s`` uses the capped gaps.
* ``as_of`` (default: the last event in the data) is the reference time of ``recency_days`` and
  ``tenure_days``; events after it are ignored, so features describe what was known then.
* RFM: R is ``recency_days`` (days since the last session, not the last purchase), F is
  ``purchases``, M is ``revenue``. Scores 1-5 are ``1 + floor(5 * percent_rank)`` over all users
  in the table (5 = most recent / most frequent / highest spend), so tied values share a score;
  with many non-buyers F and M take only a few distinct scores.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from .engine import ROW_COL, Data, Output, as_table, backend_of, bound_backend, epoch_us, finish, order_free, to_pandas
from .errors import ParameterError, SchemaError, check_columns, did_you_mean, format_allowed
from .params import parse_duration

__all__ = [
    "Feature",
    "FEATURES",
    "CONTENT_TYPES",
    "DEVICES",
    "feature_registry",
    "build_user_features",
    "feature_percentiles",
]

Level = Literal["session", "user"]
Stage = Literal["aggregate", "derived", "rank", "sessions", "events", "crm"]

#: Content type -> session counts that show the user touched it.
CONTENT_TYPES: dict[str, tuple[str, ...]] = {
    "blog": ("n_blog_views", "n_deep_reads"),
    "product": ("n_product_views",),
    "category": ("n_category_views",),
    "reviews": ("n_review_clicks",),
    "images": ("n_image_clicks",),
    "video": ("n_video_plays",),
    "search": ("n_searches",),
}
#: Canonical device labels (standardized upstream), in the order that breaks ties of ``primary_device``.
DEVICES: tuple[str, ...] = ("Mobile", "Desktop", "Tablet", "Other")
_KEYS = {"session": ("start", "end"), "user": ("first_seen", "last_seen")}
_US = 1_000_000
_DAY_S = 86_400


@ibis.udf.agg.builtin(name="arg_min")
def _duckdb_arg_min(arg: dt.string, val: dt.int64) -> dt.string:  # type: ignore[empty-body]
    """DuckDB's ``arg_min``: a hash aggregate, where Ibis's ``argmin`` compiles to an ordered
    ``FIRST(x ORDER BY key)`` that builds a sort key per row (several times slower)."""


@ibis.udf.agg.builtin(name="arg_max")
def _duckdb_arg_max(arg: dt.string, val: dt.int64) -> dt.string:  # type: ignore[empty-body]
    """DuckDB's ``arg_max`` (see :func:`_duckdb_arg_min`)."""


_TIME_ROW = dt.Decimal(38, 0)  # DuckDB's HUGEINT (the SQL below never casts to DECIMAL, which is slower)


@ibis.udf.scalar.builtin(name="multiply")
def _duckdb_multiply_wide(us: dt.int64, factor: dt.uint64) -> _TIME_ROW:  # type: ignore[empty-body,valid-type]
    """DuckDB's ``multiply`` of a BIGINT by the HUGEINT literal 2**63: a HUGEINT."""


def _duckdb_time_row(us: ibis.IntegerValue, row: ibis.IntegerValue) -> ibis.Value:
    """One HUGEINT ordered as (time, input row): ``us * 2**63 + row``, exact for every int64 time
    and row number in [0, 2**63). DuckDB's ``arg_min`` on it is about twice as fast as on the
    STRUCT (time, row), which it compares through a generic sort key."""
    return _duckdb_multiply_wide(us, ibis.literal(2**63, "uint64")) + row


@ibis.udf.agg.builtin(name="arg_min")
def _duckdb_arg_min_tr(arg: dt.string, val: _TIME_ROW) -> dt.string:  # type: ignore[empty-body,valid-type]
    """DuckDB's ``arg_min`` keyed by (time, input row): ties in time resolve the same on every engine."""


@ibis.udf.agg.builtin(name="arg_max")
def _duckdb_arg_max_tr(arg: dt.string, val: _TIME_ROW) -> dt.string:  # type: ignore[empty-body,valid-type]
    """DuckDB's ``arg_max`` keyed by (time, input row)."""


@dataclass(frozen=True)
class Feature:
    """One registered feature.

    Attributes
    ----------
    name : str
        Column name in the feature table (unique within its level).
    level : {"session", "user"}
        One row per session or per user.
    unit : str
        ``count``, ``s``, ``days``, ``percent``, ``share`` (0-1), ``currency``, ``flag``,
        ``label``, ``per week`` or ``score``.
    definition : str
        One sentence saying exactly what is computed.
    expr : callable
        Builds the Ibis expression; its argument depends on ``stage``: the event context (session
        aggregates), the session table (user aggregates), the table built so far (derived), or a
        context returning a ``(key, name)`` table to left-join (``sessions``/``events`` stages).
    stage : str
        ``aggregate`` (a reduction per group), ``derived`` (from earlier features of the same
        row), ``rank`` (a window over all rows, computed on a narrow projection and joined back),
        ``sessions``/``events`` (a per-user table from sessions/events) or ``crm``.
    requires : tuple of str
        Same-level features the expression reads.
    uses : tuple of str
        Session-level features a user-level feature reads.
    columns : tuple of str
        Optional canonical event columns needed; the feature is null when one is missing.
    dtype : str
        Type of the feature (used for the null when inputs are missing).
    fill : object
        Value for users missing from a joined table (``sessions``/``events``/``crm`` stages).
    """

    name: str
    level: Level
    unit: str
    definition: str
    expr: Callable[..., Any]
    stage: Stage = "aggregate"
    requires: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    dtype: str = "int64"
    fill: Any = None


class _Events:
    """What session-level expressions see: the event table and a few predicates."""

    def __init__(self, t: ibis.Table, *, user_col: str, session_col: str, timestamp_col: str, event_col: str,
                 heartbeat_event: str, gap_col: str | None):
        self.t = t
        self.user_col, self.session_col = user_col, session_col
        self.ts = t[timestamp_col]
        self.us = t["_sk_us"]
        self.ev = t[event_col]
        self.heartbeat_event = heartbeat_event
        self.gap_col = gap_col
        self.duckdb = backend_of(t).name == "duckdb"

    def has(self, col: str) -> bool:
        return col in self.t.columns

    def is_(self, name: str) -> ibis.BooleanValue:
        return self.ev == name

    def count(self, name: str) -> ibis.IntegerValue:
        return self.t.count(where=self.ev == name)

    def pages(self, page_type: str) -> ibis.IntegerValue:
        return self.t.count(where=(self.ev == "page_view") & (self.t.page_type == page_type))

    def first(self, col: str, where: ibis.BooleanValue | None = None, last: bool = False) -> ibis.Value:
        cond = self.t[col].notnull() if where is None else where & self.t[col].notnull()
        # by the integer epoch; on DuckDB its native arg_min / arg_max (see _duckdb_arg_min)
        # events that carry their input row number break ties in time by it, so the first and
        # last values do not depend on the engine's order (DuckDB and Spark agree exactly)
        if self.duckdb and self.t[col].type().is_string():
            if ROW_COL in self.t.columns:
                fn = _duckdb_arg_max_tr if last else _duckdb_arg_min_tr
                return fn(self.t[col], _duckdb_time_row(self.us, self.t[ROW_COL].cast("int64")), where=cond)
            fn = _duckdb_arg_max if last else _duckdb_arg_min
            return fn(self.t[col], self.us, where=cond)
        key = ibis.struct({"u": self.us, "r": self.t[ROW_COL].cast("int64")}) if ROW_COL in self.t.columns else self.us
        return self.t[col].argmax(key, where=cond) if last else self.t[col].argmin(key, where=cond)


def _engaged(c: _Events) -> ibis.Value:
    gaps = c.t[c.gap_col].sum().fill_null(0) if c.gap_col else ibis.literal(0.0)
    if not c.has("engagement_ms"):
        return gaps.cast("float64")
    hb = c.is_(c.heartbeat_event)
    n_hb = c.t.count(where=hb & c.t.engagement_ms.notnull())
    return ibis.cases((n_hb > 0, c.t.engagement_ms.sum(where=hb) / 1000.0), else_=gaps).cast("float64")


def _count_feature(name: str, event: str, what: str) -> Feature:
    return Feature(name, "session", "count", f"Number of {what} events ({event!r}) in the session.",
                   lambda c, e=event: c.count(e))


def _page_feature(name: str, page_type: str) -> Feature:
    return Feature(name, "session", "count", f"Number of page views with page_type {page_type!r} in the session.",
                   lambda c, p=page_type: c.pages(p), columns=("page_type",))


_SESSION: list[Feature] = [
    Feature("duration_s", "session", "s", "Time from the session's first to its last event, in seconds.",
            lambda c: (c.us.max() - c.us.min()).cast("float64") / _US, dtype="float64"),
    Feature("n_events", "session", "count", "Number of events in the session, of any kind.", lambda c: c.t.count()),
    Feature("n_pages", "session", "count", "Number of page views ('page_view') in the session.",
            lambda c: c.count("page_view")),
    Feature("engaged_s", "session", "s",
            "Active time: the sum of the heartbeat events' engagement_ms / 1000 when the session has heartbeats, "
            "else the sum of the gaps between consecutive events, each capped at gap_cap.",
            _engaged, dtype="float64"),
    Feature("max_scroll_depth", "session", "percent",
            "Deepest scroll_depth reported in the session (0 when it reports none).",
            lambda c: c.t.scroll_depth.max().fill_null(0).cast("float64"), columns=("scroll_depth",), dtype="float64"),
    Feature("entry_page_type", "session", "label", "page_type of the session's first page view (null without page views).",
            lambda c: c.first("page_type", c.is_("page_view")), columns=("page_type",), dtype="string"),
    Feature("exit_page_type", "session", "label", "page_type of the session's last page view (null without page views).",
            lambda c: c.first("page_type", c.is_("page_view"), last=True), columns=("page_type",), dtype="string"),
    Feature("referrer", "session", "label", "First non-null referrer of the session, as recorded.",
            lambda c: c.first("referrer", c.t.referrer != ""), columns=("referrer",), dtype="string"),
    Feature("device", "session", "label", "First non-null device label of the session (Mobile/Desktop/Tablet/Other).",
            lambda c: c.first("device"), columns=("device",), dtype="string"),
    _page_feature("n_product_views", "product"),
    _page_feature("n_category_views", "category"),
    _page_feature("n_blog_views", "blog"),
    _count_feature("n_image_clicks", "product_image_click", "product image click"),
    _count_feature("n_review_clicks", "review_click", "review click"),
    _count_feature("n_related_clicks", "related_product_click", "related-product click"),
    _count_feature("n_searches", "search", "site search"),
    _count_feature("n_wishlist_adds", "wishlist_add", "wishlist addition"),
    _count_feature("n_add_to_cart", "add_to_cart", "add-to-cart"),
    _count_feature("n_cart_views", "cart_view", "cart view"),
    _count_feature("n_checkout_starts", "checkout_start", "checkout start"),
    _count_feature("n_purchases", "purchase", "purchase"),
    _count_feature("n_video_plays", "video_play", "video play"),
    _count_feature("n_deep_reads", "deep_read", "deep read"),
    Feature("revenue", "session", "currency", "Sum of revenue over the session's purchase events (0 without purchases).",
            lambda c: c.t.revenue.sum(where=c.is_("purchase")).fill_null(0).cast("float64"), columns=("revenue",),
            dtype="float64"),
    Feature("n_content_types", "session", "count",
            "Number of content types (blog, product, category, reviews, images, video, search) touched in the session.",
            lambda s: sum(_any_positive(s, cols) for cols in CONTENT_TYPES.values()), stage="derived",
            requires=tuple(c for cols in CONTENT_TYPES.values() for c in cols)),
    Feature("has_purchase", "session", "flag", "Whether the session has at least one purchase.",
            lambda s: s.n_purchases > 0, stage="derived", requires=("n_purchases",), dtype="boolean"),
    Feature("is_bounce", "session", "flag", "Whether the session has exactly one page view.",
            lambda s: s.n_pages == 1, stage="derived", requires=("n_pages",), dtype="boolean"),
    Feature("cart_abandoned", "session", "flag", "Whether the session adds to the cart but has no purchase.",
            lambda s: (s.n_add_to_cart > 0) & (s.n_purchases == 0), stage="derived",
            requires=("n_add_to_cart", "n_purchases"), dtype="boolean"),
]


def _any_positive(t: ibis.Table, cols: Iterable[str]) -> ibis.IntegerValue:
    cond = None
    for col in cols:
        c = t[col].fill_null(0) > 0
        cond = c if cond is None else cond | c
    return cond.cast("int64")


def _user_sum(name: str, session_feature: str, what: str, unit: str = "count", dtype: str = "int64") -> Feature:
    return Feature(name, "user", unit, f"Total {what} over the user's sessions.",
                   lambda s, c=session_feature: s[c].sum(), uses=(session_feature,), dtype=dtype)


def _share(device: str) -> Feature:
    return Feature(
        f"share_{device.lower()}", "user", "share",
        f"Share of the user's sessions with a known device whose device is {device!r} (NaN if none is known).",
        lambda s, d=device: s.count(where=s.device == d).cast("float64") / s.count(where=s.device.notnull()).nullif(0),
        uses=("device",), dtype="float64",
    )


def _ratio(num: str, den: str) -> Callable[[ibis.Table, ibis.Value], ibis.Value]:
    return lambda u, as_of: u[num].cast("float64") / u[den].cast("float64").nullif(0)


def _score(col: str, descending: bool = False) -> Callable[[ibis.Table], ibis.Value]:
    def build(u: ibis.Table) -> ibis.Value:
        key = u[col].desc() if descending else u[col].asc()
        pr = ibis.percent_rank().over(ibis.window(order_by=[key]))
        score = (pr * 5).floor().cast("int64") + 1
        return ibis.cases((u[col].isnull(), ibis.null(dt.int64)), (score > 5, 5), else_=score)

    return build


def _mode(t: ibis.Table, key: str, value: ibis.Value, name: str) -> ibis.Table:
    """Most frequent non-null ``value`` per ``key``; ties go to the alphabetically first value."""
    g = t.filter(value.notnull()).group_by([t[key].name(key), value.name("_v")]).aggregate(_n=lambda x: x.count())
    return _top(g, key, name)


def _top(g: ibis.Table, key: str, name: str) -> ibis.Table:
    """From ``(key, _v, _n)`` counts, the ``_v`` with the largest ``_n`` per key (ties: smallest ``_v``)."""
    g = g.mutate(_r=ibis.row_number().over(ibis.window(group_by=g[key], order_by=[g._n.desc(), g._v])))
    return g.filter(g._r == 0).select(g[key], g._v.name(name))


def _search_counts(ctx: dict[str, Any]) -> ibis.Table:
    """``(user, _v = normalized query, _n = searches)``, built once per call and shared."""
    if "search_counts" not in ctx:
        t, key = ctx["events"], ctx["user_col"]
        s = t.filter(t[ctx["event_col"]] == "search")
        term = s.search_query.strip().lower().nullif("")
        ctx["search_counts"] = (s.filter(term.notnull()).group_by([s[key].name(key), term.name("_v")])
                                .aggregate(_n=lambda x: x.count()))
    return ctx["search_counts"]


def _distinct_search_terms(ctx: dict[str, Any]) -> ibis.Table:
    g = _search_counts(ctx)
    return g.group_by(ctx["user_col"]).aggregate(distinct_search_terms=lambda x: x.count())


def _top_search_term(ctx: dict[str, Any]) -> ibis.Table:
    return _top(_search_counts(ctx), ctx["user_col"], "top_search_term")


def _max_sessions_per_week(ctx: dict[str, Any]) -> ibis.Table:
    s, key = ctx["sessions"], ctx["user_col"]
    # Monday-based weeks from the epoch (1970-01-01 was a Thursday): tz-independent, portable
    week = (epoch_us(s, s.start) // (_US * _DAY_S) + 3) // 7
    g = s.group_by([s[key], week.name("_w")]).aggregate(_n=lambda x: x.count())
    return g.group_by(g[key]).aggregate(max_sessions_per_week=g._n.max())


def _primary_referrer(ctx: dict[str, Any]) -> ibis.Table:
    s = ctx["sessions"]
    return _mode(s, ctx["user_col"], s.referrer, "primary_referrer")


def _primary_device(u: ibis.Table, as_of: ibis.Value) -> ibis.Value:
    shares = [u[f"share_{d.lower()}"].fill_null(-1.0) for d in DEVICES]
    best = ibis.greatest(*shares)
    return ibis.cases((best < 0, ibis.null(dt.string)), *[(sh == best, ibis.literal(d)) for sh, d in zip(shares, DEVICES)])


def _days_between(late: ibis.Value, early: ibis.Value) -> ibis.Value:
    return late.delta(early, unit="microsecond").cast("float64") / (_US * _DAY_S)


_USER: list[Feature] = [
    Feature("n_sessions", "user", "count", "Number of sessions.", lambda s: s.count()),
    _user_sum("n_events", "n_events", "number of events"),
    Feature("pages_per_session", "user", "count", "Mean number of page views per session (sessions without any count as 0).",
            lambda s: s.n_pages.mean(), uses=("n_pages",), dtype="float64"),
    _user_sum("total_time_s", "duration_s", "session duration (time on site), in seconds", "s", "float64"),
    Feature("avg_session_s", "user", "s", "Mean session duration, in seconds.", lambda s: s.duration_s.mean(),
            uses=("duration_s",), dtype="float64"),
    _user_sum("engaged_time_s", "engaged_s", "engaged time (see the session feature engaged_s), in seconds", "s", "float64"),
    Feature("avg_engaged_s", "user", "s", "Mean engaged time per session, in seconds.", lambda s: s.engaged_s.mean(),
            uses=("engaged_s",), dtype="float64"),
    Feature("bounce_rate", "user", "share", "Share of the user's sessions that are bounces (exactly one page view).",
            lambda s: s.is_bounce.cast("float64").mean(), uses=("is_bounce",), dtype="float64"),
    Feature("distinct_content_types", "user", "count",
            "Number of content types (blog, product, category, reviews, images, video, search) the user touched.",
            lambda s: sum(_any_positive(s, cols).max() for cols in CONTENT_TYPES.values()),
            uses=tuple(c for cols in CONTENT_TYPES.values() for c in cols)),
    Feature("active_days", "user", "count", "Number of distinct UTC calendar days on which a session started.",
            lambda s: (epoch_us(s, s.start) // (_US * _DAY_S)).nunique()),
    Feature("max_sessions_per_week", "user", "count",
            "Largest number of sessions started within one calendar week (Monday to Sunday, UTC).",
            _max_sessions_per_week, stage="sessions", fill=0),
    Feature("max_scroll_depth", "user", "percent", "Deepest scroll depth over all sessions.",
            lambda s: s.max_scroll_depth.max(), uses=("max_scroll_depth",), dtype="float64"),
    Feature("avg_max_scroll_depth", "user", "percent", "Mean over sessions of the session's deepest scroll depth.",
            lambda s: s.max_scroll_depth.mean(), uses=("max_scroll_depth",), dtype="float64"),
    _user_sum("product_views", "n_product_views", "number of product page views"),
    _user_sum("category_views", "n_category_views", "number of category page views"),
    _user_sum("blog_views", "n_blog_views", "number of blog page views"),
    _user_sum("image_clicks", "n_image_clicks", "number of product image clicks"),
    _user_sum("review_clicks", "n_review_clicks", "number of review clicks"),
    _user_sum("related_clicks", "n_related_clicks", "number of related-product clicks"),
    _user_sum("video_plays", "n_video_plays", "number of video plays"),
    _user_sum("deep_reads", "n_deep_reads", "number of deep reads"),
    _user_sum("searches", "n_searches", "number of site searches"),
    Feature("distinct_search_terms", "user", "count",
            "Number of distinct search queries (trimmed, lowercased, empty ones ignored) over the user's searches.",
            _distinct_search_terms, stage="events", columns=("search_query",), fill=0),
    Feature("top_search_term", "user", "label",
            "The user's most frequent search query (trimmed, lowercased; ties go to the alphabetically first).",
            _top_search_term, stage="events", columns=("search_query",), dtype="string"),
    _user_sum("wishlist_adds", "n_wishlist_adds", "number of wishlist additions"),
    _user_sum("add_to_carts", "n_add_to_cart", "number of add-to-cart events"),
    _user_sum("cart_views", "n_cart_views", "number of cart views"),
    _user_sum("checkout_starts", "n_checkout_starts", "number of checkout starts"),
    _user_sum("purchases", "n_purchases", "number of purchase events (RFM frequency)"),
    _user_sum("revenue", "revenue", "purchase revenue (RFM monetary value)", "currency", "float64"),
    Feature("avg_order_value", "user", "currency", "revenue / purchases (NaN without purchases).",
            _ratio("revenue", "purchases"), stage="derived", requires=("revenue", "purchases"), dtype="float64"),
    Feature("conversion_rate", "user", "share", "Share of the user's sessions with a purchase.",
            lambda s: s.has_purchase.cast("float64").mean(), uses=("has_purchase",), dtype="float64"),
    Feature("cart_sessions", "user", "count", "Number of sessions with at least one add-to-cart.",
            lambda s: s.count(where=s.n_add_to_cart > 0), uses=("n_add_to_cart",)),
    Feature("abandoned_carts", "user", "count", "Number of sessions with an add-to-cart and no purchase.",
            lambda s: s.count(where=s.cart_abandoned), uses=("cart_abandoned",)),
    Feature("cart_abandonment", "user", "share", "abandoned_carts / cart_sessions (NaN without cart sessions).",
            _ratio("abandoned_carts", "cart_sessions"), stage="derived", requires=("abandoned_carts", "cart_sessions"),
            dtype="float64"),
    *[_share(d) for d in DEVICES],
    Feature("primary_device", "user", "label",
            "Device of the largest share of the user's sessions (ties: Mobile, Desktop, Tablet, Other; null if unknown).",
            _primary_device, stage="derived", requires=tuple(f"share_{d.lower()}" for d in DEVICES), dtype="string"),
    Feature("primary_referrer", "user", "label",
            "Most frequent session referrer (ties go to the alphabetically first; null without referrers).",
            _primary_referrer, stage="sessions", uses=("referrer",), dtype="string"),
    Feature("recency_days", "user", "days", "Days from the end of the user's last session to as_of (RFM recency).",
            lambda u, as_of: _days_between(as_of, u.last_seen), stage="derived", dtype="float64"),
    Feature("tenure_days", "user", "days", "Days from the start of the user's first session to as_of.",
            lambda u, as_of: _days_between(as_of, u.first_seen), stage="derived", dtype="float64"),
    Feature("visits_per_week", "user", "per week",
            "Sessions per week observed: n_sessions * 7 / max(tenure_days, 7).",
            lambda u, as_of: u.n_sessions.cast("float64") * 7 / ibis.greatest(u.tenure_days, 7.0), stage="derived",
            requires=("n_sessions", "tenure_days"), dtype="float64"),
    Feature("r_score", "user", "score", "RFM recency score 1-5 (5 = most recent) from recency_days.",
            _score("recency_days", descending=True), stage="rank", requires=("recency_days",)),
    Feature("f_score", "user", "score", "RFM frequency score 1-5 (5 = most purchases) from purchases.",
            _score("purchases"), stage="rank", requires=("purchases",)),
    Feature("m_score", "user", "score", "RFM monetary score 1-5 (5 = highest revenue) from revenue.",
            _score("revenue"), stage="rank", requires=("revenue",)),
    Feature("rfm_score", "user", "score", "r_score + f_score + m_score (3-15).",
            lambda u, as_of: u.r_score + u.f_score + u.m_score, stage="derived", requires=("r_score", "f_score", "m_score")),
    Feature("lifetime_value", "user", "currency", "CRM lifetime value (NaN for users not in the CRM table).",
            lambda c: c.lifetime_value.cast("float64"), stage="crm", dtype="float64"),
    Feature("is_vip", "user", "flag", "CRM VIP flag (False for users not in the CRM table).",
            lambda c: c.is_vip.cast("boolean"), stage="crm", dtype="boolean", fill=False),
    Feature("has_crm", "user", "flag", "Whether the user has a row in the CRM table.",
            lambda c: ibis.literal(True), stage="crm", dtype="boolean", fill=False),
]

#: Every registered feature, session level first, in output order.
FEATURES: tuple[Feature, ...] = tuple(_SESSION + _USER)
_BY_LEVEL: dict[str, dict[str, Feature]] = {
    lvl: {f.name: f for f in FEATURES if f.level == lvl} for lvl in ("session", "user")
}
_CRM_COLUMNS = ("lifetime_value", "is_vip")


def feature_registry(level: Level | None = None) -> pd.DataFrame:
    """The registered features: ``name``, ``level``, ``unit`` and ``definition``.

    Parameters
    ----------
    level : {"session", "user"}, optional
        Only features of this level; both by default.

    Examples
    --------
    >>> reg = feature_registry("user")
    >>> reg.set_index("name").loc["pages_per_session", "unit"]
    'count'
    """
    if level is not None and level not in _BY_LEVEL:
        raise ParameterError("level", level, list(_BY_LEVEL))
    rows = [
        {"name": f.name, "level": f.level, "unit": f.unit, "definition": f.definition}
        for f in FEATURES
        if level is None or f.level == level
    ]
    return pd.DataFrame(rows, columns=["name", "level", "unit", "definition"])


def _resolve(features: Sequence[str] | None, level: Level, *, exclude_stage: str | None = None) -> list[Feature]:
    """Requested features of ``level`` plus everything they require, in registry order."""
    pool = _BY_LEVEL[level]
    if features is None:
        wanted = [f.name for f in pool.values() if f.stage != exclude_stage]
    else:
        if isinstance(features, str) or not isinstance(features, Iterable):
            raise ParameterError("features", features, "a list of feature names")
        wanted = list(features)
        for name in wanted:
            if name not in pool:
                other = "user" if level == "session" else "session"
                if name in _BY_LEVEL[other]:
                    raise ParameterError(
                        "features", name,
                        message=f"Feature {name!r} is a {other}-level feature, not a {level}-level one; "
                        f"{level}-level features: {format_allowed(list(pool))}",
                    )
                raise ParameterError(
                    "features", name,
                    message=f"Unknown {level}-level feature {name!r};{did_you_mean(name, pool)} "
                    f"allowed: {format_allowed(list(pool))} (see segkit.features.feature_registry())",
                )
    need: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in need:
            continue
        need.add(name)
        stack.extend(pool[name].requires)
    return [f for f in pool.values() if f.name in need]


def _mutate_batched(t: ibis.Table, features: Iterable[Feature], build: Callable[[Feature, ibis.Table], Any]) -> ibis.Table:
    """Add derived features with as few ``mutate`` layers as their dependencies allow."""
    batch: dict[str, Feature] = {}
    for f in features:
        if any(r in batch for r in f.requires):
            t = t.mutate(**{name: build(g, t) for name, g in batch.items()})
            batch = {}
        batch[f.name] = f
    if batch:
        t = t.mutate(**{name: build(g, t) for name, g in batch.items()})
    return t


def _closure(features: Iterable[Feature], pool: Sequence[Feature]) -> set[str]:
    """Names of the features ``features`` require, transitively (themselves excluded)."""
    by_name = {f.name: f for f in pool}
    out: set[str] = set()
    stack = [r for f in features for r in f.requires]
    while stack:
        name = stack.pop()
        if name not in out:
            out.add(name)
            stack.extend(by_name[name].requires if name in by_name else ())
    return out


def _depends_on(names: set[str], pool: Sequence[Feature]) -> set[str]:
    """Features of ``pool`` that require any of ``names``, transitively."""
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for f in pool:
            if f.name not in out and any(r in names or r in out for r in f.requires):
                out.add(f.name)
                changed = True
    return out


def _check_keys(t: ibis.Table, cols: Sequence[str], session_col: str) -> None:
    if session_col not in t.columns:
        raise SchemaError(
            [{
                "column": session_col, "check": "missing_column", "count": None, "examples": None,
                "message": f"Column {session_col!r} not found in event log;{did_you_mean(session_col, t.columns)} "
                "label sessions with segkit.split_sessions first. "
                f"Available: {format_allowed(list(t.columns))}",
            }],
            title="event log is missing required columns",
        )
    check_columns(t.columns, cols, what="event log")


def _session_features_expr(
    t: ibis.Table,
    *,
    features: Sequence[str] | None,
    heartbeat_event: str,
    gap_cap: str | pd.Timedelta,
    user_col: str,
    session_col: str,
    timestamp_col: str,
    event_col: str,
) -> ibis.Table:
    """Ibis expression of the session table (see :func:`segkit.sessions.session_table`)."""
    cap = parse_duration(gap_cap, name="gap_cap")
    if not isinstance(heartbeat_event, str) or not heartbeat_event:
        raise ParameterError("heartbeat_event", heartbeat_event, "an event name")
    _check_keys(t, [user_col, timestamp_col, event_col], session_col)
    chosen = _resolve(features, "session")
    names = {f.name for f in chosen}
    t = t.mutate(_sk_us=epoch_us(t, t[timestamp_col]))
    gap_col = None
    if "engaged_s" in names:
        if "gap_s" in t.columns:  # split_sessions computed it in its own pass
            gap = t["gap_s"].cast("float64")
        else:
            w = ibis.window(group_by=[t[user_col], t[session_col]], order_by=[t[timestamp_col], t[event_col]])
            gap = (t["_sk_us"] - t["_sk_us"].lag().over(w)).cast("float64") / _US
        # LEAST ignores NULL on some engines: keep the first event's missing gap missing
        t = t.mutate(_sk_gap=ibis.cases((gap > cap.total_seconds(), cap.total_seconds()), else_=gap))
        gap_col = "_sk_gap"
    ctx = _Events(t, user_col=user_col, session_col=session_col, timestamp_col=timestamp_col, event_col=event_col,
                  heartbeat_event=heartbeat_event, gap_col=gap_col)
    metrics: dict[str, Any] = {"start": ctx.ts.min(), "end": ctx.ts.max()}
    missing: list[Feature] = []
    for f in chosen:
        if f.stage != "aggregate":
            continue
        if all(ctx.has(c) for c in f.columns):
            metrics[f.name] = f.expr(ctx)
        else:
            missing.append(f)
    if "session_index" in t.columns and t["session_index"].type().is_integer():
        # split_sessions output: group by the integer index (cheaper than the string key) and
        # rebuild the id it is made of
        s = t.group_by([t[user_col], t["session_index"]]).aggregate(**metrics)
        s = s.mutate(**{session_col: s[user_col].cast("string").concat("-", s["session_index"].cast("string"))})
        keys = [user_col, session_col, "session_index"]
    else:
        s = t.group_by([t[user_col], t[session_col]]).aggregate(**metrics)
        keys = [user_col, session_col]
    if missing:
        s = s.mutate(**{f.name: ibis.null(f.dtype) for f in missing})
    s = _mutate_batched(s, [f for f in chosen if f.stage == "derived"], lambda f, tbl: f.expr(tbl))
    wanted = [f.name for f in chosen]
    return s.select(*keys, "start", "end", *wanted)


def _as_of_literal(as_of: Any) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise ParameterError("as_of", as_of, "a timestamp such as '2024-03-01' or '2024-03-01T12:00Z'")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _crm_table(crm: Data, crm_key_col: str, con: Any = None) -> ibis.Table:
    c = as_table(crm, con=con)
    check_columns(c.columns, [crm_key_col, *_CRM_COLUMNS], what="CRM table")
    dup = to_pandas(c.group_by(c[crm_key_col]).aggregate(_n=lambda x: x.count()).filter(lambda x: x._n > 1).limit(5))
    if len(dup):
        raise SchemaError(
            [{
                "column": crm_key_col, "check": "unique", "count": len(dup), "examples": dup,
                "message": f"CRM column {crm_key_col!r} must be unique; duplicated keys such as "
                f"{dup[crm_key_col].astype(str).tolist()}",
            }],
            title="CRM table failed validation",
        )
    return c.select(
        c[crm_key_col].cast("string").name("_sk_crm_key"),
        c.lifetime_value.cast("float64").name("lifetime_value"),
        c.is_vip.cast("boolean").name("is_vip"),
    )


@order_free
def build_user_features(
    events: Data,
    *,
    sessions: Data | None = None,
    crm: Data | None = None,
    as_of: str | pd.Timestamp | None = None,
    features: Sequence[str] | None = None,
    heartbeat_event: str = "engagement_time",
    gap_cap: str | pd.Timedelta = "5m",
    user_col: str = "user_id",
    session_col: str = "session_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
    crm_key_col: str = "customer_id",
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """One row per user with the user-level features of the registry.

    Sessions are aggregated from the events first (or taken from ``sessions``), users from the
    sessions; only the two search features read the events again (one scan, shared). No Python
    loop runs over users.

    For large logs compute the session table once and pass it: ``sessions = session_table(ev)``
    then ``build_user_features(ev, sessions=sessions)``. Passing the session table as a lazy
    Ibis expression works too, but then this query (and every other query on it) recomputes the
    sessionization.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Events with sessions (the output of :func:`segkit.sessions.split_sessions`).
    sessions : DataFrame, Parquet path or Ibis table, optional
        The session table of these events (:func:`segkit.sessions.session_table` with all
        session features, or at least those the requested features use), to reuse instead of
        aggregating the events again. Not allowed together with ``as_of``.
    crm : DataFrame, Parquet path or Ibis table, optional
        CRM table with ``crm_key_col``, ``lifetime_value`` and ``is_vip``, left-joined on the
        user key: users without a CRM row get ``lifetime_value`` NaN, ``is_vip`` False and
        ``has_crm`` False. Without it the CRM features are not produced (asking for them is an error).
    as_of : str or Timestamp, optional
        Reference time of ``recency_days`` and ``tenure_days`` (naive values are UTC); events
        after it are ignored. Default: the last event's time.
    features : list of str, optional
        User-level feature names (see :func:`feature_registry`); all by default. Unknown names
        raise :class:`ParameterError` with a did-you-mean hint.
    heartbeat_event, gap_cap
        How sessions' engaged time is measured (see :func:`segkit.sessions.session_table`).
    user_col, session_col, timestamp_col, event_col : str
        Key, time and event-name columns of ``events``.
    crm_key_col : str, default="customer_id"
        Key column of ``crm`` (compared as strings with ``user_col``); only with ``crm``.
    output : {"pandas", "ibis"}, default="pandas"

    Returns
    -------
    DataFrame or Ibis table
        ``user_col``, ``first_seen``, ``last_seen`` and the features in registry order,
        sorted by user for pandas output.

    Examples
    --------
    >>> import pandas as pd
    >>> from segkit.sessions import split_sessions
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["page_view", "page_view", "search"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 10:00",
    ...                                                 "2024-01-01 10:00"], utc=True)})
    >>> u = build_user_features(split_sessions(ev), features=["n_sessions", "pages_per_session"])
    >>> u[["user_id", "n_sessions", "pages_per_session"]].values.tolist()
    [['a', 2, 1.0], ['b', 1, 0.0]]
    """
    if output not in ("pandas", "ibis"):
        raise ParameterError("output", output, ["pandas", "ibis"])
    if crm is None and crm_key_col != "customer_id":
        raise ParameterError("crm_key_col", crm_key_col,
                             message=f"Parameter 'crm_key_col' got {crm_key_col!r} but no crm table was given")
    chosen = _resolve(features, "user", exclude_stage="crm" if crm is None else None)
    if crm is None and any(f.stage == "crm" for f in chosen):
        bad = next(f.name for f in chosen if f.stage == "crm")
        raise ParameterError("features", bad, message=f"Feature {bad!r} comes from the CRM table; pass crm=...")
    t = as_table(events)
    _check_keys(t, [user_col, timestamp_col, event_col], session_col)
    as_of_ts = None if as_of is None else _as_of_literal(as_of)
    if as_of_ts is not None:
        if sessions is not None:
            raise ParameterError("as_of", as_of, message="Parameter 'as_of' cuts the events at a time, so it "
                                 "cannot reuse a precomputed session table: pass sessions=None")
        t = t.filter(t[timestamp_col] <= ibis.literal(as_of_ts.to_pydatetime(), type=t[timestamp_col].type()))

    uses = sorted({u for f in chosen for u in f.uses if f.stage in ("aggregate", "sessions")})
    if sessions is None:
        s = _session_features_expr(
            t, features=uses, heartbeat_event=heartbeat_event, gap_cap=gap_cap, user_col=user_col,
            session_col=session_col, timestamp_col=timestamp_col, event_col=event_col,
        )
    else:
        s = as_table(sessions, con=bound_backend(t))  # a session frame joins the events' engine
        check_columns(s.columns, [user_col, session_col, *_KEYS["session"], *uses], what="session table")
    as_of_expr = None if as_of_ts is None else ibis.literal(as_of_ts.to_pydatetime(), type=dt.Timestamp(timezone="UTC"))

    metrics: dict[str, Any] = {"first_seen": s.start.min(), "last_seen": s.end.max()}
    metrics.update({f.name: f.expr(s) for f in chosen if f.stage == "aggregate"})
    u0 = s.group_by(s[user_col]).aggregate(**metrics)
    if as_of_expr is None:  # the last event, as a scalar subquery: no extra pass over the events
        as_of_expr = u0.last_seen.max().as_scalar()

    # per-user side tables, joined in one chain
    ctx = {"events": t, "sessions": s, "user_col": user_col, "event_col": event_col}
    u = u0
    fills: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    for i, f in enumerate(f for f in chosen if f.stage in ("sessions", "events")):
        if f.stage == "events" and not all(c in t.columns for c in f.columns):
            nulls[f.name] = ibis.null(f.dtype)
            continue
        side = f.expr(ctx)
        side = side.rename(**{f"_sk_key{i}": user_col})
        u = u.left_join(side, u[user_col] == side[f"_sk_key{i}"])
        if f.fill is not None:
            fills[f.name] = f.fill
    u = u.select(
        *[c for c in u.columns if not c.startswith("_sk_key") and c not in fills],
        **{name: u[name].fill_null(value) for name, value in fills.items()},
        **nulls,
    )

    # derived features; those built on ranks come after the ranks are joined
    ranks = [f for f in chosen if f.stage == "rank"]
    post = _depends_on({f.name for f in ranks}, chosen)

    def derive(f: Feature, tbl: ibis.Table) -> Any:
        return f.expr(tbl, as_of_expr)

    u = _mutate_batched(u, [f for f in chosen if f.stage == "derived" and f.name not in post], derive)
    if ranks:
        # windows over all users run on a narrow projection: sorting the wide rows is slow
        inputs = _closure([r for r in ranks], chosen)
        narrow = u0.select(user_col, *[f.name for f in chosen if f.stage == "aggregate" and f.name in inputs],
                           "first_seen", "last_seen")
        narrow = _mutate_batched(narrow, [f for f in chosen if f.stage == "derived" and f.name in inputs], derive)
        narrow = narrow.select(narrow[user_col].name("_sk_rk"), **{r.name: r.expr(narrow) for r in ranks})
        u = u.left_join(narrow, u[user_col] == narrow._sk_rk).drop("_sk_rk")
        u = _mutate_batched(u, [f for f in chosen if f.stage == "derived" and f.name in post], derive)

    crm_feats = [f for f in chosen if f.stage == "crm"]
    if crm is not None and crm_feats:
        c = _crm_table(crm, crm_key_col, con=bound_backend(t)).mutate(has_crm=ibis.literal(True))
        u = u.left_join(c, u[user_col] == c._sk_crm_key).drop("_sk_crm_key")
        u = u.mutate(**{f.name: u[f.name].fill_null(f.fill) for f in crm_feats if f.fill is not None})

    u = u.select(user_col, "first_seen", "last_seen", *[f.name for f in chosen])
    if output == "pandas":
        u = u.order_by(user_col)
    return finish(u, output)


def feature_percentiles(
    feature_table: Data,
    *,
    features: Sequence[str] | None = None,
    percentiles: Sequence[float] = (0.5, 0.75, 0.9, 0.95, 0.99),
) -> pd.DataFrame:
    """Percentiles of numeric features, one row per feature, to set data-driven thresholds.

    Parameters
    ----------
    feature_table : DataFrame, Parquet path or Ibis table
        Output of :func:`build_user_features` or :func:`segkit.sessions.session_table`.
    features : list of str, optional
        Numeric columns to summarize; by default every numeric registered feature present
        (flags and labels excluded).
    percentiles : sequence of float, default=(0.5, 0.75, 0.9, 0.95, 0.99)
        Each strictly between 0 and 1.

    Returns
    -------
    DataFrame
        Index ``feature``; columns ``unit``, ``count`` (non-null values) and one column per
        percentile named ``p50``, ``p75``, ``p90``, ``p95``, ``p99`` (``p99.9`` for 0.999),
        computed with linear interpolation and ignoring NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> uf = pd.DataFrame({"user_id": list("abcde"), "pages_per_session": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> feature_percentiles(uf, percentiles=(0.5, 0.9)).loc["pages_per_session", ["p50", "p90"]].tolist()
    [3.0, 4.6]
    """
    df = feature_table if isinstance(feature_table, pd.DataFrame) else to_pandas(as_table(feature_table))
    if isinstance(percentiles, (str, bytes)) or not isinstance(percentiles, Iterable):
        raise ParameterError("percentiles", percentiles, "a list of numbers strictly between 0 and 1")
    qs = list(percentiles)
    if not qs:
        raise ParameterError("percentiles", percentiles, "a non-empty list of numbers strictly between 0 and 1")
    for q in qs:
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
            raise ParameterError("percentiles", q, message=f"Parameter 'percentiles' got {q!r}; each percentile "
                                 "must be a number strictly between 0 and 1 (0.9, not 90)")
    units = {f.name: f.unit for f in FEATURES}
    if features is None:
        cols = [c for c in df.columns if c in units and units[c] not in ("flag", "label")
                and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if not cols:
            raise ParameterError("feature_table", list(df.columns),
                                 message="No numeric registered feature found in the table; pass features=[...]")
    else:
        if isinstance(features, str):
            raise ParameterError("features", features, "a list of column names")
        cols = list(features)
        check_columns(df.columns, cols, what="feature table")
        for c in cols:
            if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
                raise ParameterError("features", c, message=f"Feature {c!r} is not numeric "
                                     f"(dtype {str(df[c].dtype)!r}); percentiles need numbers")
    labels = [f"p{q * 100:g}" for q in qs]
    values = df[cols].astype("float64").quantile(qs, interpolation="linear").T
    values.columns = labels
    out = pd.DataFrame({"unit": [units.get(c) for c in cols], "count": df[cols].notna().sum().to_numpy()},
                       index=pd.Index(cols, name="feature"))
    return out.join(values)
