"""Reference implementation for the benchmarks: sessionization and features in plain pandas.

:func:`pandas_sessions_and_features` does what :func:`segkit.split_sessions`,
:func:`segkit.session_table` and :func:`segkit.build_user_features` do for the core features, the
way a data scientist would write it: sort, ``groupby().diff()``, ``cumsum()``, then named
``groupby().agg()`` over boolean indicator columns. It is vectorized (no Python loops over users)
but single-threaded and eager. Same rules as segkit: order by timestamp then event name, a gap
strictly greater than the timeout starts a session, session ids ``"{user}-{index}"``.

:func:`synthetic_events` makes a canonical event log of any size with numpy, for timing runs that
do not need the simulated shop.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pandas_sessions_and_features", "synthetic_events"]

_EVENTS = np.array([
    "page_view", "engagement_time", "scroll_depth_25", "scroll_depth_50", "scroll_depth_75", "scroll_depth_100",
    "product_image_click", "review_click", "related_product_click", "search", "wishlist_add", "add_to_cart",
    "cart_view", "checkout_start", "purchase", "video_play", "deep_read",
])
_P = np.array([40, 18, 8, 5, 3, 2, 5, 3, 3, 4, 1, 3, 2, 1, 0.6, 1, 0.4], dtype=float)
_PAGE_TYPES = np.array(["home", "category", "product", "cart", "checkout", "blog", "search"])
_PAGE_P = np.array([15, 25, 40, 5, 3, 8, 4], dtype=float)
_DEVICES = np.array(["Mobile", "Desktop", "Tablet"])
_REFERRERS = np.array(["google", "facebook", "newsletter", "instagram", "bing"])


def synthetic_events(n_events: int = 10_000_000, n_users: int = 200_000, *, n_days: int = 56,
                     seed: int = 0) -> pd.DataFrame:
    """A canonical event log of about ``n_events`` rows, sorted by timestamp (like an export).

    Sessions of about 10 events (gaps of ~30 s) start uniformly over ``n_days`` days and are
    spread over ``n_users`` users; each user has one device, each session's first event a
    referrer. Event names, page types, scroll depths, heartbeats (15,000 ms), revenue and search
    queries (500 terms) follow the default taxonomy.
    """
    rng = np.random.default_rng(seed)
    n_sessions = max(1, n_events // 10)
    sizes = rng.geometric(1 / 10, n_sessions)
    sizes = sizes[: max(1, int(np.searchsorted(np.cumsum(sizes), n_events)) + 1)]
    n_sessions = len(sizes)
    sess_user = rng.integers(0, n_users, n_sessions)
    sess_start = rng.integers(0, n_days * 86_400, n_sessions).astype("int64") * 1_000_000
    sess = np.repeat(np.arange(n_sessions), sizes)
    n = len(sess)
    first = np.r_[True, sess[1:] != sess[:-1]]
    gaps = rng.exponential(30e6, n).astype("int64")
    gaps[first] = 0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[first], sizes)
    ts_us = sess_start[sess] + offset + 1_704_067_200 * 1_000_000  # from 2024-01-01 UTC
    event = _EVENTS[rng.choice(len(_EVENTS), n, p=_P / _P.sum())]
    event[first] = "page_view"
    is_pv = event == "page_view"
    page_type = np.where(is_pv, _PAGE_TYPES[rng.choice(len(_PAGE_TYPES), n, p=_PAGE_P / _PAGE_P.sum())], None)
    user_ids = np.char.add("u", np.char.zfill(np.arange(n_users).astype(str), 6)).astype(object)
    user = user_ids[sess_user[sess]]
    scroll = np.full(n, np.nan)
    for depth in (25, 50, 75, 100):
        scroll[event == f"scroll_depth_{depth}"] = depth
    engagement = np.where(event == "engagement_time", 15_000.0, np.nan)
    revenue = np.where(event == "purchase", np.round(rng.gamma(2.0, 40.0, n), 2), np.nan)
    terms = np.char.add("term ", np.arange(500).astype(str)).astype(object)
    search = np.where(event == "search", terms[rng.zipf(1.5, n) % 500], None)
    device = _DEVICES[rng.choice(3, n_users, p=[0.55, 0.38, 0.07])][sess_user[sess]]
    referrer = np.where(first, _REFERRERS[rng.integers(0, len(_REFERRERS), n)], None)
    df = pd.DataFrame({
        "user_id": pd.array(user, dtype="string"),
        "timestamp": pd.to_datetime(ts_us, unit="us", utc=True),
        "event": pd.array(event, dtype="string"),
        "page_type": pd.array(page_type, dtype="string"),
        "revenue": revenue,
        "device": pd.array(device, dtype="string"),
        "referrer": pd.array(referrer, dtype="string"),
        "search_query": pd.array(search, dtype="string"),
        "scroll_depth": scroll,
        "engagement_ms": engagement,
    })
    return df.sort_values("timestamp", kind="stable", ignore_index=True)


def pandas_sessions_and_features(events_df: pd.DataFrame, timeout: str = "30m",
                                 gap_cap: str = "5m") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sessionize and build session and user features with plain pandas.

    Parameters
    ----------
    events_df : DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``, ``page_type``, ``revenue``,
        ``device``, ``search_query``, ``scroll_depth``, ``engagement_ms``).
    timeout : str, default="30m"
        Inactivity gap that ends a session (``pd.Timedelta`` syntax).
    gap_cap : str, default="5m"
        Cap per gap for engaged time of sessions without heartbeats.

    Returns
    -------
    (sessions, users) : tuple of DataFrame
        One row per session and one row per user, with the same names as segkit's features.
    """
    td = pd.Timedelta(timeout)
    df = events_df.sort_values(["user_id", "timestamp", "event"], ignore_index=True)
    for col in ("page_type", "device", "search_query"):  # optional canonical columns
        if col not in df:
            df[col] = pd.Series(pd.NA, index=df.index, dtype="string")
    for col in ("engagement_ms", "scroll_depth", "revenue"):
        if col not in df:
            df[col] = np.nan
    gap = df.groupby("user_id", sort=False)["timestamp"].diff()
    new = gap.isna() | (gap > td)
    df["session_index"] = new.astype("int64").groupby(df["user_id"], sort=False).cumsum() - 1
    df["session_id"] = df["user_id"] + "-" + df["session_index"].astype(str)

    ev = df["event"]
    pv = ev == "page_view"
    in_gap = gap.where(~new).dt.total_seconds().clip(upper=pd.Timedelta(gap_cap).total_seconds())
    work = pd.DataFrame({
        "user_id": df["user_id"],
        "session_id": df["session_id"],
        "timestamp": df["timestamp"],
        "is_page": pv,
        "is_product": pv & (df["page_type"] == "product"),
        "is_category": pv & (df["page_type"] == "category"),
        "is_blog": pv & (df["page_type"] == "blog"),
        "is_image": ev == "product_image_click",
        "is_review": ev == "review_click",
        "is_related": ev == "related_product_click",
        "is_search": ev == "search",
        "is_wishlist": ev == "wishlist_add",
        "is_cart": ev == "add_to_cart",
        "is_cart_view": ev == "cart_view",
        "is_checkout": ev == "checkout_start",
        "is_purchase": ev == "purchase",
        "is_video": ev == "video_play",
        "is_deep_read": ev == "deep_read",
        "hb_ms": df["engagement_ms"].where(ev == "engagement_time"),
        "gap_s": in_gap,
        "scroll": df["scroll_depth"],
        "revenue": df["revenue"].where(ev == "purchase"),
        "page_type": df["page_type"].where(pv),
        "device": df["device"],
    })
    for c in work.columns:
        if c.startswith("is_"):
            work[c] = work[c].fillna(False).astype("int64")
    g = work.groupby(["user_id", "session_id"], sort=False)
    s = g.agg(
        start=("timestamp", "min"), end=("timestamp", "max"), n_events=("timestamp", "size"),
        n_pages=("is_page", "sum"), hb_ms=("hb_ms", "sum"), n_hb=("hb_ms", "count"), gap_s=("gap_s", "sum"),
        max_scroll_depth=("scroll", "max"), entry_page_type=("page_type", "first"), exit_page_type=("page_type", "last"),
        device=("device", "first"), n_product_views=("is_product", "sum"), n_category_views=("is_category", "sum"),
        n_blog_views=("is_blog", "sum"), n_image_clicks=("is_image", "sum"), n_review_clicks=("is_review", "sum"),
        n_related_clicks=("is_related", "sum"), n_searches=("is_search", "sum"), n_wishlist_adds=("is_wishlist", "sum"),
        n_add_to_cart=("is_cart", "sum"), n_cart_views=("is_cart_view", "sum"), n_checkout_starts=("is_checkout", "sum"),
        n_purchases=("is_purchase", "sum"), n_video_plays=("is_video", "sum"), n_deep_reads=("is_deep_read", "sum"),
        revenue=("revenue", "sum"),
    ).reset_index()
    s["duration_s"] = (s["end"] - s["start"]).dt.total_seconds()
    s["engaged_s"] = np.where(s["n_hb"] > 0, s["hb_ms"] / 1000, s["gap_s"])
    s["max_scroll_depth"] = s["max_scroll_depth"].fillna(0.0)
    s["has_purchase"] = s["n_purchases"] > 0
    s["is_bounce"] = s["n_pages"] == 1
    s["cart_abandoned"] = (s["n_add_to_cart"] > 0) & (s["n_purchases"] == 0)
    s["has_cart"] = s["n_add_to_cart"] > 0
    content = [s["n_blog_views"] + s["n_deep_reads"], s["n_product_views"], s["n_category_views"],
               s["n_review_clicks"], s["n_image_clicks"], s["n_video_plays"], s["n_searches"]]
    for i, c in enumerate(content):
        s[f"ct_{i}"] = c > 0
    s["n_content_types"] = sum(s[f"ct_{i}"].astype("int64") for i in range(len(content)))
    for d in ("Mobile", "Desktop", "Tablet", "Other"):
        s[f"dev_{d}"] = (s["device"] == d).astype("float64").where(s["device"].notna())
    s = s.drop(columns=["hb_ms", "n_hb", "gap_s"])

    gu = s.groupby("user_id")
    u = gu.agg(
        first_seen=("start", "min"), last_seen=("end", "max"), n_sessions=("session_id", "size"),
        n_events=("n_events", "sum"), pages_per_session=("n_pages", "mean"), total_time_s=("duration_s", "sum"),
        avg_session_s=("duration_s", "mean"), engaged_time_s=("engaged_s", "sum"), avg_engaged_s=("engaged_s", "mean"),
        bounce_rate=("is_bounce", "mean"), max_scroll_depth=("max_scroll_depth", "max"),
        avg_max_scroll_depth=("max_scroll_depth", "mean"), product_views=("n_product_views", "sum"),
        category_views=("n_category_views", "sum"), blog_views=("n_blog_views", "sum"),
        image_clicks=("n_image_clicks", "sum"), review_clicks=("n_review_clicks", "sum"),
        related_clicks=("n_related_clicks", "sum"), video_plays=("n_video_plays", "sum"),
        deep_reads=("n_deep_reads", "sum"), searches=("n_searches", "sum"), wishlist_adds=("n_wishlist_adds", "sum"),
        add_to_carts=("n_add_to_cart", "sum"), cart_views=("n_cart_views", "sum"),
        checkout_starts=("n_checkout_starts", "sum"), purchases=("n_purchases", "sum"), revenue=("revenue", "sum"),
        conversion_rate=("has_purchase", "mean"), cart_sessions=("has_cart", "sum"),
        abandoned_carts=("cart_abandoned", "sum"), share_mobile=("dev_Mobile", "mean"),
        share_desktop=("dev_Desktop", "mean"), share_tablet=("dev_Tablet", "mean"), share_other=("dev_Other", "mean"),
        **{f"ct_{i}": (f"ct_{i}", "max") for i in range(len(content))},
    )
    u["distinct_content_types"] = sum(u.pop(f"ct_{i}").astype("int64") for i in range(len(content)))
    u["active_days"] = s.assign(day=s["start"].dt.floor("D")).groupby("user_id")["day"].nunique()
    u["avg_order_value"] = u["revenue"] / u["purchases"].where(u["purchases"] > 0)
    u["cart_abandonment"] = u["abandoned_carts"] / u["cart_sessions"].where(u["cart_sessions"] > 0)
    as_of = u["last_seen"].max()
    u["recency_days"] = (as_of - u["last_seen"]).dt.total_seconds() / 86_400
    u["tenure_days"] = (as_of - u["first_seen"]).dt.total_seconds() / 86_400
    u["visits_per_week"] = u["n_sessions"] * 7 / u["tenure_days"].clip(lower=7)
    searches = df.loc[df["event"] == "search", ["user_id", "search_query"]]
    terms = searches["search_query"].str.strip().str.lower().replace("", pd.NA)
    u["distinct_search_terms"] = terms.groupby(searches["user_id"]).nunique().reindex(u.index, fill_value=0)
    sessions = s.drop(columns=[c for c in s.columns if c.startswith(("ct_", "dev_"))] + ["has_cart"])
    return sessions, u.reset_index()
