"""The reference for the cleaning benchmark: the same cleaning steps written in plain pandas.

This is how a data scientist would write segkit's cleaning without segkit (the brief's section
3d, taken to the same rules): drop unknown events, flag bots by user agent and by machine-like
timing, drop exact and near duplicates, map device labels, normalize URLs, fill page types from
URL rules and fill missing referrers. Vectorized pandas throughout, no per-row Python loops.
"""
from __future__ import annotations

import pandas as pd

_BOT_UA = (
    r"(?i)bot|crawl|spider|slurp|curl/|wget|python-requests|httpclient|scrapy|headless|phantomjs|"
    r"ahrefs|semrush|yandex|facebookexternalhit"
)
_DEVICES = {
    "iphone": "Mobile", "android": "Mobile", "mobile": "Mobile", "phone": "Mobile",
    "desktop": "Desktop", "pc": "Desktop", "mac": "Desktop", "windows": "Desktop",
    "ipad": "Tablet", "tablet": "Tablet",
}
_PAGE_RULES = [
    ("home", r"^/$"), ("category", r"^/category(/|$)"), ("product", r"^/product(/|$)"), ("cart", r"^/cart(/|$)"),
    ("checkout", r"^/checkout(/|$)"), ("blog", r"^/blog(/|$)"), ("search", r"^/search(/|$)"),
]


def pandas_clean(events: pd.DataFrame, *, timeout: str = "30m", min_gap_cv: float = 0.35,
                 min_events_for_timing: int = 20, tolerance: str = "1s") -> pd.DataFrame:
    """Clean a canonical, taxonomy-applied event log with plain pandas; returns the kept rows."""
    df = events[events["event_category"] != "unknown"]

    # bots: declared user agents, and near-constant gaps inside sessions for active visitors
    uas = pd.Series(df["user_agent"].dropna().unique())
    bot_uas = set(uas[uas.str.contains(_BOT_UA, regex=True)])
    ua_bot = df["user_agent"].isin(bot_uas)
    order = df.sort_values(["user_id", "timestamp"])
    gap = order.groupby("user_id")["timestamp"].diff().dt.total_seconds()
    gap = gap[(gap > 0) & (gap <= pd.Timedelta(timeout).total_seconds())]
    stats = gap.groupby(order.loc[gap.index, "user_id"]).agg(["mean", "std", "count"])
    cv = stats["std"] / stats["mean"]
    timing_bots = set(cv[(stats["count"] >= min_events_for_timing) & (cv < min_gap_cv)].index)
    bot_users = set(df.loc[ua_bot, "user_id"]) | timing_bots
    df = df[~df["user_id"].isin(bot_users)]

    # duplicates: exact rows, then the same row within the tolerance
    df = df[~df.duplicated()]
    key = [c for c in df.columns if c != "timestamp"]
    df = df.sort_values(["user_id", "timestamp"])
    prev = df.groupby(key, dropna=False, sort=False)["timestamp"].shift()
    df = df[~((df["timestamp"] - prev) <= pd.Timedelta(tolerance))]

    # standardization
    df = df.copy()
    df["device"] = df["device"].str.strip().str.lower().map(_DEVICES).fillna("Other")
    page = df["page"].str.replace(r"#.*$", "", regex=True).str.replace(r"\?.*$", "", regex=True)
    page = page.str.replace(r"^(?i:https?)://", "https://", regex=True).str.lower().str.rstrip("/")
    df["page"] = page.where(page != "", "/")
    path = df["page"].str.replace(r"^https?://[^/]+", "", regex=True).replace("", "/")
    filled = pd.Series(pd.NA, index=df.index, dtype="string")
    for page_type, pattern in reversed(_PAGE_RULES):
        filled = filled.mask(path.str.contains(pattern, regex=True), page_type)
    views = df["event"] == "page_view"
    df.loc[views, "page_type"] = df.loc[views, "page_type"].fillna(filled[views])
    df["referrer"] = df["referrer"].fillna("(direct)")
    return df
