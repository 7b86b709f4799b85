"""Standardize event fields: device labels, page URLs, page types and duplicate events.

Every function here keeps the set of rows unchanged and only adds or rewrites columns, so the
cleaning pipeline decides what to drop and can count each change:

* :func:`normalize_devices` rewrites ``device`` to one of ``Mobile``, ``Desktop``, ``Tablet``,
  ``Bot``, ``Other`` and adds ``device_raw`` and ``device_source``;
* :func:`normalize_urls` rewrites ``page`` to a canonical path and adds ``page_raw``;
* :func:`assign_page_types` fills ``page_type`` from ordered regex rules and adds
  ``page_type_source``;
* :func:`find_duplicates` adds ``duplicate`` (``None``, ``"exact_duplicate"``,
  ``"near_duplicate"``).

The transforms are Ibis expressions (DuckDB by default), so they also run on other Ibis backends.
They accept a pandas DataFrame, a Parquet path or an Ibis table and return pandas unless
``output="ibis"``. For a pandas input the result keeps the input's row order and index.

Examples
--------
>>> import pandas as pd
>>> ev = pd.DataFrame({"page": ["HTTP://Shop.Example.com/Cart/?sid=9#top", "/"]})
>>> normalize_urls(ev)["page"].tolist()
['/Cart', '/']
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import ibis
import numpy as np
import pandas as pd
import ua_parser

from .engine import ROW_COL, Data, Output, as_table, backend_name, epoch_us, finish, hash64
from .errors import ParameterError, check_columns
from .params import parse_duration
from .schema import CANONICAL_COLUMNS

__all__ = [
    "DEVICE_TYPES",
    "DEFAULT_DEVICE_LABELS",
    "DEFAULT_PAGE_TYPE_RULES",
    "normalize_devices",
    "parse_user_agents",
    "normalize_urls",
    "assign_page_types",
    "find_duplicates",
]

DEVICE_TYPES: tuple[str, ...] = ("Mobile", "Desktop", "Tablet", "Bot", "Other")
"""The device classes :func:`normalize_devices` produces."""

DEFAULT_DEVICE_LABELS: dict[str, str] = {
    "mobile": "Mobile",
    "iphone": "Mobile",
    "ipod": "Mobile",
    "android": "Mobile",
    "phone": "Mobile",
    "smartphone": "Mobile",
    "mobile phone": "Mobile",
    "cell": "Mobile",
    "desktop": "Desktop",
    "pc": "Desktop",
    "mac": "Desktop",
    "windows": "Desktop",
    "linux": "Desktop",
    "laptop": "Desktop",
    "computer": "Desktop",
    "tablet": "Tablet",
    "ipad": "Tablet",
    "bot": "Bot",
    "robot": "Bot",
    "crawler": "Bot",
    "spider": "Bot",
    "other": "Other",
}
"""Raw device label (lower-cased, stripped) -> device class; ``labels=`` entries override these."""

DEFAULT_PAGE_TYPE_RULES: tuple[tuple[str, str], ...] = (
    ("home", r"^/$"),
    ("category", r"^/category(/|$)"),
    ("product", r"^/product(/|$)"),
    ("checkout", r"^/checkout(/|$)"),
    ("cart", r"^/cart(/|$)"),
    ("blog", r"^/blog(/|$)"),
    ("search", r"^/search(/|$)"),
)
"""Page-type rules ``(page_type, regex)`` for the simulated shop, matched against the URL path."""

_ROW = ROW_COL
_UA_KEY = "__segkit_ua"
_UA_CLASS = "__segkit_ua_device"
_KEY = "__segkit_key"
_SCHEME_AUTH = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//"
_DESKTOP_OS = (
    "windows",
    "mac os x",
    "mac os",
    "linux",
    "ubuntu",
    "chrome os",
    "chromium os",
    "fedora",
    "debian",
    "red hat",
    "suse",
    "mint",
    "freebsd",
    "openbsd",
    "netbsd",
    "solaris",
    "gentoo",
    "arch linux",
)
_MOBILE_OS = ("windows phone", "windows mobile", "blackberry os", "blackberry", "symbian os", "kaios", "firefox os", "bada", "tizen")
_BOT_RE = re.compile(
    r"(?<!cu)bot\b|bot/|crawl|spider|slurp|headless|\+https?://|https?://\S+/(?:bot|robot)|python-|curl/|wget/|"
    r"java/|go-http|okhttp|httpclient|scrapy|phantomjs|facebookexternalhit|preview|monitor|checker|archiver|fetcher",
    re.IGNORECASE,
)
_MOBILE_TOKEN = re.compile(r"Mobi", re.IGNORECASE)
_NOT_RE2 = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]")


# --------------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------------


class _Run:
    """One call's input: a pandas frame (order and index restored) or an Ibis table."""

    def __init__(self, events: Data, output: Any):
        if output not in ("pandas", "ibis"):
            raise ParameterError("output", output, ["pandas", "ibis"])
        self.output: Output = output
        self.frame = events if isinstance(events, pd.DataFrame) else None
        self._table = None if self.frame is not None else as_table(events)
        if self.frame is not None:
            self.columns = [str(c) for c in self.frame.columns]
            if _ROW in self.columns:
                raise ParameterError("events", _ROW, message=f"Column {_ROW!r} is reserved by segkit")
        else:
            self.columns = list(self._table.columns)

    def require(self, columns: Sequence[str]) -> None:
        check_columns(self.columns, list(dict.fromkeys(columns)), what="events")

    def table(self, use: Sequence[str]) -> ibis.Table:
        """The input as an Ibis table; for a pandas result only the columns in ``use`` travel."""
        if self.frame is None:
            return self._table
        sub = self.frame if self.output == "ibis" else self.frame[list(dict.fromkeys(use))]
        sub = sub.reset_index(drop=True).assign(**{_ROW: np.arange(len(sub), dtype="int64")})
        return ibis.memtable(sub)

    def result(self, t: ibis.Table, computed: Sequence[str], raw: Mapping[str, str]) -> pd.DataFrame | ibis.Table:
        """Finish: ``computed`` columns come from ``t``; ``raw`` maps new column -> copied input column.

        ``t`` must already hold the ``raw`` copies (for Ibis and non-pandas results).
        """
        if self.frame is None:
            if self.output == "ibis":
                return t
            df = finish(t, "pandas")
            return df.astype({c: "string" for c in computed})
        if self.output == "ibis":
            return t.order_by(_ROW).drop(_ROW)
        res = finish(t.select(_ROW, *computed), "pandas")
        rows = res[_ROW].to_numpy()
        inverse = np.empty(len(rows), dtype="int64")
        inverse[rows] = np.arange(len(rows))
        res = res.iloc[inverse]
        new: dict[str, Any] = {}
        for name, src in raw.items():
            new[name] = self.frame[src]
        for name in computed:
            new[name] = pd.Series(res[name].to_numpy(), index=self.frame.index, dtype="string")
        return self.frame.assign(**new)


def _blank_to_null(value: ibis.Value) -> ibis.Value:
    s = value.cast("string").strip()
    return ibis.ifelse(s == "", ibis.null("string"), s)


# --------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------


def _classify(ua: str, device_family: str | None, os_family: str | None) -> str:
    """Device class of one user agent from ua-parser's device and OS families."""
    dev = (device_family or "Other").strip()
    osf = (os_family or "Other").strip().lower()
    if dev == "Spider" or _BOT_RE.search(ua):
        return "Bot"
    if dev == "iPad" or osf == "ipados":
        return "Tablet"
    if dev in ("iPhone", "iPod") or dev.startswith("iPod"):
        return "Mobile"
    if osf.startswith(_MOBILE_OS):
        return "Mobile"
    if dev == "Generic Tablet" or "kindle" in dev.lower():
        return "Tablet"
    if osf == "android" or "android" in ua.lower():
        return "Mobile" if _MOBILE_TOKEN.search(ua) else "Tablet"
    if dev in ("Generic Smartphone", "Generic Feature Phone"):
        return "Mobile"
    if osf == "ios":
        return "Mobile"
    if osf.startswith(_DESKTOP_OS) and dev in ("Other", "Mac"):
        return "Desktop"
    if _MOBILE_TOKEN.search(ua):
        return "Mobile"
    if re.search(r"tablet", ua, re.IGNORECASE):
        return "Tablet"
    return "Other"


@functools.lru_cache(maxsize=200_000)
def _parse_device_type(ua: str) -> str:
    res = ua_parser.parser(ua, ua_parser.Domain.DEVICE | ua_parser.Domain.OS)
    dev = res.device.family if res.device else None
    osf = res.os.family if res.os else None
    return _classify(ua, dev, osf)


@functools.lru_cache(maxsize=200_000)
def _parse_full(ua: str) -> tuple[str | None, str | None, str | None, str]:
    res = ua_parser.parse(ua)
    browser = res.user_agent.family if res.user_agent else "Other"
    osf = res.os.family if res.os else "Other"
    dev = res.device.family if res.device else "Other"
    return browser, osf, dev, _classify(ua, None if dev == "Other" else dev, osf)


def _unique_strings(values: pd.Series) -> np.ndarray:
    s = values.dropna()
    s = s[s.astype(str).str.strip() != ""]
    return pd.unique(s.astype(str))


def parse_user_agents(user_agents: pd.Series | Sequence[str | None]) -> pd.DataFrame:
    """Parse user-agent strings with ua-parser into browser, OS, device family and device type.

    Only the distinct strings are parsed (and cached across calls), so a long series with few
    distinct user agents is fast.

    Parameters
    ----------
    user_agents : pandas.Series or sequence of str
        Raw HTTP user-agent strings; missing or blank values give missing results.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``user_agents``, with columns ``browser`` (ua-parser's user-agent family,
        e.g. ``"Chrome Mobile"``), ``os`` (``"Android"``), ``device_family`` (``"Pixel 8"``,
        ``"Spider"``, ``"Other"``) and ``device_type`` (one of :data:`DEVICE_TYPES`).

    Notes
    -----
    ``device_type`` rules, first match wins: ua-parser device family ``"Spider"`` or a crawler
    keyword (``bot/``, ``crawler``, ``spider``, ``headless``, ``python-``, ``curl/`` ...) gives
    ``Bot``; iPad gives ``Tablet``; iPhone / iPod give ``Mobile``; Windows Phone, BlackBerry,
    KaiOS ... give ``Mobile``; Android gives ``Mobile`` with a ``Mobi`` token and ``Tablet``
    without one (Google's convention); Windows, macOS, Linux and ChromeOS give ``Desktop``;
    otherwise a ``Mobi`` token gives ``Mobile`` and ``Tablet`` gives ``Tablet``; else ``Other``.
    iPads in "desktop mode" send a Mac user agent and count as ``Desktop``.

    Examples
    --------
    >>> parse_user_agents(["Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    ...                    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"]).loc[0, "device_type"]
    'Tablet'
    """
    s = user_agents if isinstance(user_agents, pd.Series) else pd.Series(list(user_agents), dtype="object")
    uniques = _unique_strings(s)
    table = pd.DataFrame([_parse_full(u) for u in uniques], columns=["browser", "os", "device_family", "device_type"])
    table.index = pd.Index(uniques, dtype="object")
    key = s.astype("object").where(s.notna(), None)
    out = table.reindex(key.to_numpy()).astype("object")
    out.index = s.index
    return out.where(out.notna(), None)


def _label_table(labels: Mapping[str, str] | None) -> dict[str, str]:
    table = dict(DEFAULT_DEVICE_LABELS)
    if labels is None:
        return table
    if not isinstance(labels, Mapping):
        raise ParameterError("labels", labels, "a mapping raw label -> device class")
    for raw, cls in labels.items():
        if not isinstance(raw, str):
            raise ParameterError("labels", raw, message=f"Parameter 'labels' has a non-string key {raw!r}")
        if cls not in DEVICE_TYPES:
            raise ParameterError(f"labels[{raw!r}]", cls, list(DEVICE_TYPES))
        table[raw.strip().lower()] = cls
    return table


def normalize_devices(
    events: Data,
    *,
    device_col: str = "device",
    user_agent_col: str | None = "user_agent",
    labels: Mapping[str, str] | None = None,
    prefer: Literal["label", "user_agent"] = "label",
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """Normalize device labels to ``Mobile``, ``Desktop``, ``Tablet``, ``Bot`` or ``Other``.

    A raw label is lower-cased and stripped and looked up in :data:`DEFAULT_DEVICE_LABELS`
    (``iphone`` -> ``Mobile``, ``pc`` -> ``Desktop``, ``ipad`` -> ``Tablet``, ``crawler`` ->
    ``Bot`` ...), updated by ``labels``; unknown labels become ``Other``. Where the label is
    missing or ``Other``, the class comes from the user agent (see :func:`parse_user_agents`).
    No row is dropped.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        The event log; must have ``device_col`` (and ``user_agent_col`` unless it is ``None``).
    device_col : str, default="device"
        Raw device label column; rewritten in place.
    user_agent_col : str or None, default="user_agent"
        User-agent column used where the label does not decide; ``None`` to use labels only.
    labels : mapping of str to str, optional
        Extra or overriding entries ``raw label -> device class`` (keys are matched
        case-insensitively after stripping whitespace; values must be in :data:`DEVICE_TYPES`).
    prefer : {"label", "user_agent"}, default="label"
        Which source wins when both give a known class. With ``"user_agent"`` the label is used
        only where the user agent is missing or unrecognized.
    output : {"pandas", "ibis"}, default="pandas"
        Return a pandas DataFrame or the Ibis expression.

    Returns
    -------
    DataFrame or Ibis table
        The events with ``device_col`` normalized, plus ``{device_col}_raw`` (the value before
        this call) and ``{device_col}_source``: ``"label"`` (decided by the label, including
        unknown labels that the user agent could not resolve), ``"user_agent"`` or
        ``"default"`` (no label and no usable user agent: ``Other``).

    Raises
    ------
    SchemaError
        If a named column is missing.
    ParameterError
        If ``prefer``, ``labels`` or ``output`` is not allowed, or ``prefer="user_agent"`` is
        combined with ``user_agent_col=None``.

    Notes
    -----
    The user agents are parsed on their distinct values in Python (ua-parser) and joined back
    as a small in-memory table, so a million rows with a thousand distinct user agents cost a
    thousand parses.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"device": [" iPhone", "PC", None, "smart tv"],
    ...                    "user_agent": [None, None, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", None]})
    >>> out = normalize_devices(ev)
    >>> out["device"].tolist(), out["device_source"].tolist()
    (['Mobile', 'Desktop', 'Desktop', 'Other'], ['label', 'label', 'user_agent', 'label'])
    """
    run = _Run(events, output)
    if prefer not in ("label", "user_agent"):
        raise ParameterError("prefer", prefer, ["label", "user_agent"])
    if prefer == "user_agent" and user_agent_col is None:
        raise ParameterError(
            "prefer", prefer, message="Parameter 'prefer' is 'user_agent' but user_agent_col is None; name the user-agent column"
        )
    table = _label_table(labels)
    required = [device_col] + ([user_agent_col] if user_agent_col is not None else [])
    run.require(required)
    t = run.table(required)

    raw = t[device_col]
    key = raw.cast("string").strip().lower()
    label_class = ibis.ifelse(key.isnull() | (key == ""), ibis.null("string"), key.substitute(table, else_="Other"))
    t = t.mutate(**{f"{device_col}_raw": raw, "__segkit_label": label_class})

    if user_agent_col is not None:
        distinct = finish(t.select(**{_UA_KEY: t[user_agent_col].cast("string")}).distinct(), "pandas")[_UA_KEY]
        uniques = _unique_strings(distinct)
        classes = [_parse_device_type(u) for u in uniques]
        known = [(u, c) for u, c in zip(uniques, classes) if c != "Other"]
        if known:
            lookup = ibis.memtable(
                pd.DataFrame({_UA_KEY: [u for u, _ in known], _UA_CLASS: [c for _, c in known]}),
            ).cast({_UA_KEY: "string", _UA_CLASS: "string"})
            joined = t.left_join(lookup, t[user_agent_col].cast("string") == lookup[_UA_KEY])
            t = joined.select([*t.columns, _UA_CLASS])
        else:
            t = t.mutate(**{_UA_CLASS: ibis.null("string")})
    else:
        t = t.mutate(**{_UA_CLASS: ibis.null("string")})

    lab = t["__segkit_label"]
    ua = t[_UA_CLASS]
    lab_known = lab.notnull() & (lab != "Other")
    if prefer == "label":
        device = ibis.cases((lab_known, lab), (ua.notnull(), ua), else_="Other")
        source = ibis.cases((lab_known, "label"), (ua.notnull(), "user_agent"), (lab.notnull(), "label"), else_="default")
    else:
        device = ibis.cases((ua.notnull(), ua), (lab_known, lab), else_="Other")
        source = ibis.cases((ua.notnull(), "user_agent"), (lab.notnull(), "label"), else_="default")
    t = t.mutate(**{device_col: device, f"{device_col}_source": source}).drop("__segkit_label", _UA_CLASS)
    return run.result(t, [device_col, f"{device_col}_source"], {f"{device_col}_raw": device_col})


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


def _split_url(t: ibis.Table, page_col: str) -> ibis.Table:
    """Add the parts of a URL column, in stages so the SQL stays small.

    ``__u_s`` the stripped URL without fragment (null when blank), ``__u_auth`` whether it has a
    ``scheme://host`` part, ``__u_host`` that authority, ``__u_path`` the path (may be empty)
    and ``__u_query`` the query string (empty when none).
    """
    t = t.mutate(__u_s=_blank_to_null(t[page_col]).re_replace(r"#.*$", "")).view()
    t = t.mutate(__u_auth=t["__u_s"].re_search(_SCHEME_AUTH)).view()
    s, auth = t["__u_s"], t["__u_auth"]
    t = t.mutate(
        __u_host=ibis.ifelse(auth, s.re_extract(_SCHEME_AUTH + r"([^/?]*)", 1), "").fill_null(""),
        __u_rest=ibis.ifelse(auth, s.re_replace(_SCHEME_AUTH + r"[^/?]*", ""), s),
    ).view()
    rest = t["__u_rest"]
    t = t.mutate(
        __u_path=rest.re_extract(r"^([^?]*)", 1).fill_null(""),
        __u_query=ibis.ifelse(rest.contains("?"), rest.re_replace(r"^[^?]*\?", ""), "").fill_null(""),
    ).view()
    return t


def _map_distinct(t: ibis.Table, col: str, build: Any) -> ibis.Table:
    """Compute ``build`` on the distinct values of ``col`` (as ``_KEY``) and left-join it back.

    Regex work then scales with the number of distinct values, not rows. ``build`` takes and
    returns a table with the string column ``_KEY``; its other columns are added to ``t``
    (null where ``col`` is null).
    """
    distinct = t.select(**{_KEY: t[col].cast("string")}).distinct()
    mapped = build(distinct)
    added = [c for c in mapped.columns if c != _KEY]
    joined = t.left_join(mapped, t[col].cast("string") == mapped[_KEY])
    return joined.select(*t.columns, *added)


def _normalize_url_table(d: ibis.Table, *, keep_params: tuple[str, ...], keep_host: bool, lowercase_path: bool) -> ibis.Table:
    t = _split_url(d, _KEY)
    # stripped again: whitespace before a query string ("/a\r?x") is only at the end once the query is gone
    path = t["__u_path"].strip().re_replace(r"/{2,}", "/").re_replace(r"/+$", "")
    path = ibis.ifelse(path == "", "/", path)
    if lowercase_path:
        path = path.lower()
    parts = {"__u_path": path}
    if keep_host:
        host = t["__u_host"].lower().re_replace(r"^.*@", "").re_replace(r"^www\.", "")
        parts["__u_host"] = host.re_replace(r":(80|443)$", "").re_replace(r"\.$", "")
    t = t.mutate(**parts).view()
    path = t["__u_path"]
    if keep_params:
        kept = (
            t["__u_query"]
            .split("&")
            .filter(lambda p: p.re_extract(r"^([^=]*)", 1).isin(list(keep_params)))
            .sort()
            .join("&")
            .fill_null("")
        )
        t = t.mutate(__u_kept=kept).view()
        path = ibis.ifelse(t["__u_kept"] == "", t["__u_path"], t["__u_path"] + "?" + t["__u_kept"])
    if keep_host:
        path = ibis.ifelse(t["__u_auth"] & (t["__u_host"] != ""), "https://" + t["__u_host"] + path, path)
    out = ibis.ifelse(t["__u_s"].isnull(), ibis.null("string"), path)
    return t.select(_KEY, __u_out=out)


def normalize_urls(
    events: Data,
    *,
    page_col: str = "page",
    keep_params: Sequence[str] = ("q", "utm_source", "utm_medium", "utm_campaign"),
    keep_host: bool = False,
    lowercase_path: bool = False,
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """Normalize page URLs so that the same page has one spelling.

    Steps, all as portable Ibis string expressions: strip whitespace (blank becomes missing);
    drop the fragment (``#top``); drop scheme, host and port (unless ``keep_host``); collapse
    repeated slashes; remove trailing slashes except for the root ``/``; keep only the query
    parameters named in ``keep_params``, sorted as text, and drop the rest (session ids, click
    ids). Absolute URLs (``https://shop.example.com/cart``) and relative paths from access logs
    (``/cart/``) therefore end up the same (``/cart``). Percent-encoding is left as it is. The
    result is idempotent: normalizing twice gives the same as once.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        The event log; must have ``page_col``.
    page_col : str, default="page"
        Page URL column; rewritten in place.
    keep_params : sequence of str, default=("q", "utm_source", "utm_medium", "utm_campaign")
        Query parameter names to keep (case-sensitive); all others are removed. Empty to remove
        the whole query string.
    keep_host : bool, default=False
        Keep the host: ``HTTP://WWW.Shop.Example.com:80/a`` becomes
        ``https://shop.example.com/a`` (scheme unified to ``https``, host lower-cased, ``www.``
        removed, default ports 80 / 443 removed). Relative paths stay relative.
    lowercase_path : bool, default=False
        Also lower-case the path (paths are case-sensitive by the standard, so off by default).
    output : {"pandas", "ibis"}, default="pandas"
        Return a pandas DataFrame or the Ibis expression.

    Returns
    -------
    DataFrame or Ibis table
        The events with ``page_col`` normalized and ``{page_col}_raw`` holding the value before
        this call. Count changes with ``page != page_raw``.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"page": ["HTTP://Shop.Example.com/Product/p1/?utm_source=x&sid=9#top",
    ...                             "/cart/", "https://shop.example.com", None]})
    >>> normalize_urls(ev)["page"].tolist()
    ['/Product/p1?utm_source=x', '/cart', '/', <NA>]
    >>> normalize_urls(ev, keep_host=True)["page"].tolist()[0]
    'https://shop.example.com/Product/p1?utm_source=x'
    """
    run = _Run(events, output)
    if isinstance(keep_params, str) or not all(isinstance(p, str) for p in keep_params):
        raise ParameterError("keep_params", keep_params, "a list of query parameter names")
    for name, flag in (("keep_host", keep_host), ("lowercase_path", lowercase_path)):
        if not isinstance(flag, bool):
            raise ParameterError(name, flag, [True, False])
    run.require([page_col])
    t = run.table([page_col])

    t = t.mutate(**{f"{page_col}_raw": t[page_col]})
    build = functools.partial(_normalize_url_table, keep_params=tuple(keep_params), keep_host=keep_host, lowercase_path=lowercase_path)
    t = _map_distinct(t, page_col, build)
    t = t.mutate(**{page_col: t["__u_out"]}).drop("__u_out")
    return run.result(t, [page_col], {f"{page_col}_raw": page_col})


# --------------------------------------------------------------------------------------------
# page types
# --------------------------------------------------------------------------------------------


def _parse_rules(rules: Sequence[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(rules, Mapping):
        items = list(rules.items())
    elif isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise ParameterError("rules", rules, "a mapping page_type -> regex or a list of (page_type, regex) pairs")
    else:
        items = list(rules)
    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise ParameterError(f"rules[{i}]", item, "a (page_type, regex) pair of strings")
        page_type, pattern = item
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ParameterError(
                f"rules[{i}]",
                pattern,
                message=f"Rule {i} ({page_type!r}) has an invalid regex {pattern!r}: {exc}",
            ) from exc
        if _NOT_RE2.search(pattern):
            raise ParameterError(
                f"rules[{i}]",
                pattern,
                message=f"Rule {i} ({page_type!r}) regex {pattern!r} uses lookaround or backreferences, "
                "which DuckDB / Spark regexes (RE2) do not support",
            )
        out.append((page_type, pattern))
    return out


def _match_rules_table(d: ibis.Table, *, rules: tuple[tuple[str, str], ...], case_sensitive: bool) -> ibis.Table:
    t = _split_url(d, _KEY)
    path = ibis.ifelse(t["__u_path"] == "", "/", t["__u_path"])
    if not case_sensitive:
        path = path.lower()
    t = t.mutate(__u_path=path).view()
    if rules:
        matched = ibis.cases(*[(t["__u_path"].re_search(p), ibis.literal(name)) for name, p in rules], else_=ibis.null("string"))
        matched = ibis.ifelse(t["__u_s"].isnull(), ibis.null("string"), matched)
    else:
        matched = ibis.null("string")
    return t.select(_KEY, __pt_match=matched)


def assign_page_types(
    events: Data,
    rules: Sequence[tuple[str, str]] | Mapping[str, str] = DEFAULT_PAGE_TYPE_RULES,
    *,
    page_col: str = "page",
    page_type_col: str = "page_type",
    overwrite: bool = False,
    case_sensitive: bool = False,
    default: str | None = "other",
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """Assign page types from ordered regex rules on the URL path (first match wins).

    Each rule is ``(page_type, regex)``; the regex is searched (not fully matched) in the page's
    path, without scheme, host, query string and fragment, so ``^/$`` matches
    ``https://shop.example.com/?utm_source=x``. Rules only fill rows whose page type is missing
    or blank, unless ``overwrite``.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        The event log; must have ``page_col``. ``page_type_col`` is created when absent.
    rules : mapping of str to str, or sequence of (str, str), default=DEFAULT_PAGE_TYPE_RULES
        ``page_type -> regex`` in order, or a list of ``(page_type, regex)`` pairs (use the list
        form to give one page type several regexes). Regexes use the RE2 syntax shared by
        DuckDB and Spark (no lookaround or backreferences). Unknown page type names are fine.
    page_col : str, default="page"
        Page URL or path column.
    page_type_col : str, default="page_type"
        Page type column to fill.
    overwrite : bool, default=False
        Let a matching rule replace a tracked page type. Where no rule matches, a tracked value is
        kept either way.
    case_sensitive : bool, default=False
        Match rules against the path as written instead of lower-cased.
    default : str or None, default="other"
        Page type of rows that have none and match no rule (``None`` leaves them missing).
    output : {"pandas", "ibis"}, default="pandas"
        Return a pandas DataFrame or the Ibis expression.

    Returns
    -------
    DataFrame or Ibis table
        The events with ``page_type_col`` filled and ``{page_type_col}_source``: ``"tracked"``
        (kept from the input), ``"rule"`` or ``"default"``.

    Raises
    ------
    ParameterError
        If a rule is not a ``(page_type, regex)`` pair of strings or its regex is invalid (the
        message names the rule and the regex error).
    SchemaError
        If ``page_col`` is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"page": ["/", "/product/p1?utm_source=x", "/about", "/cart"],
    ...                    "page_type": [None, None, None, "basket"]})
    >>> out = assign_page_types(ev)
    >>> out["page_type"].tolist(), out["page_type_source"].tolist()
    (['home', 'product', 'other', 'basket'], ['rule', 'rule', 'default', 'tracked'])
    """
    run = _Run(events, output)
    parsed = _parse_rules(rules)
    if not isinstance(overwrite, bool):
        raise ParameterError("overwrite", overwrite, [True, False])
    if not isinstance(case_sensitive, bool):
        raise ParameterError("case_sensitive", case_sensitive, [True, False])
    if default is not None and not isinstance(default, str):
        raise ParameterError("default", default, "a page type name (str) or None")
    run.require([page_col])
    t = run.table([page_col] + ([page_type_col] if page_type_col in run.columns else []))

    t = _map_distinct(t, page_col, functools.partial(_match_rules_table, rules=tuple(parsed), case_sensitive=case_sensitive))
    has_tracked = page_type_col in t.columns
    t = t.mutate(
        __pt_tracked=_blank_to_null(t[page_type_col]).notnull() if has_tracked else ibis.literal(False),
    ).view()
    matched, tracked = t["__pt_match"], t["__pt_tracked"]
    tracked_value = t[page_type_col].cast("string") if has_tracked else ibis.null("string")
    default_value = ibis.literal(default, type="string") if default is not None else ibis.null("string")
    if overwrite:
        value = ibis.cases((matched.notnull(), matched), (tracked, tracked_value), else_=default_value)
        source = ibis.cases((matched.notnull(), "rule"), (tracked, "tracked"), else_="default")
    else:
        value = ibis.cases((tracked, tracked_value), (matched.notnull(), matched), else_=default_value)
        source = ibis.cases((tracked, "tracked"), (matched.notnull(), "rule"), else_="default")
    t = t.mutate(**{page_type_col: value, f"{page_type_col}_source": source})
    t = t.drop("__pt_match", "__pt_tracked")
    return run.result(t, [page_type_col, f"{page_type_col}_source"], {})


# --------------------------------------------------------------------------------------------
# duplicates
# --------------------------------------------------------------------------------------------


def find_duplicates(
    events: Data,
    *,
    tolerance: str | pd.Timedelta | None = "1s",
    key_cols: Sequence[str] | None = ("user_id", "event"),
    exact_cols: Sequence[str] | None = None,
    timestamp_col: str = "timestamp",
    flagged_only: bool = False,
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """Flag exact and near-duplicate events in a ``duplicate`` column; no row is dropped
    (unless ``flagged_only`` asks for the flagged rows alone).

    * ``"exact_duplicate"``: the row equals an earlier row on every column of ``exact_cols``
      (by default every canonical column present, timestamp included; missing values count as
      equal). The first of a group of equal rows is not flagged.
    * ``"near_duplicate"``: not an exact duplicate, but the previous non-exact-duplicate row of
      the same ``key_cols`` (ordered by time) is at most ``tolerance`` earlier. The comparison
      chains: each row is compared with the row just before it, flagged or not, so a burst
      at 0 s, 0.6 s and 1.2 s with ``tolerance="1s"`` flags both later rows and keeps only the
      first (a double-firing tag collapses to one event however long the burst is).
    * ``None`` otherwise.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        The event log.
    tolerance : str, Timedelta or None, default="1s"
        Largest gap for a near duplicate, with units (``"500ms"``, ``"1s"``). ``None`` flags
        exact duplicates only.
    key_cols : sequence of str or None, default=("user_id", "event")
        Columns that must be equal for a near duplicate. ``None``: every column of
        ``exact_cols`` except the timestamp, i.e. the same event repeated with only its time
        changed (a double-firing tag); stricter, so far fewer genuine quick repeats are flagged.
    exact_cols : sequence of str, optional
        Columns compared for exact duplicates; default: the canonical columns present in the
        table (so reader bookkeeping columns such as line numbers are ignored).
    timestamp_col : str, default="timestamp"
        Event time column.
    flagged_only : bool, default=False
        Return only the flagged rows (the same rows and flags; on a large log the engine skips
        building the flag of every other row).
    output : {"pandas", "ibis"}, default="pandas"
        Return a pandas DataFrame or the Ibis expression.

    Returns
    -------
    DataFrame or Ibis table
        The events (with ``flagged_only``, the flagged events) with a ``duplicate`` column.
        Earlier rows are decided by time, then by input order for a pandas input (for other
        inputs, which of equal-time rows is kept is arbitrary but the counts are not).

    Raises
    ------
    ParameterError
        If ``tolerance`` has no units or is not positive, or ``flagged_only`` is not a boolean.
    SchemaError
        If a named column is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> ts = pd.to_datetime(["2024-01-01 10:00:00", "2024-01-01 10:00:00",
    ...                      "2024-01-01 10:00:00.6", "2024-01-01 10:05:00"], utc=True, format="ISO8601")
    >>> ev = pd.DataFrame({"user_id": ["u"] * 4, "event": ["click"] * 4, "timestamp": ts})
    >>> find_duplicates(ev)["duplicate"].tolist()
    [<NA>, 'exact_duplicate', 'near_duplicate', <NA>]
    """
    if not isinstance(flagged_only, (bool, np.bool_)):
        raise ParameterError("flagged_only", flagged_only, "True or False")
    run = _Run(events, output)
    if tolerance is not None:
        try:
            tol = parse_duration(tolerance, name="tolerance")
        except ParameterError as exc:
            raise ParameterError(
                "tolerance", tolerance, message=f"{exc}; use tolerance=None to flag exact duplicates only"
            ) from exc
    if isinstance(key_cols, str):
        raise ParameterError("key_cols", key_cols, "a list of column names")
    if isinstance(exact_cols, str):
        raise ParameterError("exact_cols", exact_cols, "a list of column names")
    exact = list(exact_cols) if exact_cols is not None else [c for c in CANONICAL_COLUMNS if c in run.columns]
    if not exact:
        raise ParameterError("exact_cols", exact_cols, message="No columns to compare for exact duplicates")
    key_cols = [c for c in exact if c != timestamp_col] if key_cols is None else list(key_cols)
    needed = list(dict.fromkeys([*key_cols, *exact, timestamp_col] if tolerance is not None else exact))
    run.require(needed)
    t = run.table(needed)
    has_row = _ROW in t.columns

    order = [t[_ROW]] if has_row else []
    # Partition by a 64-bit hash of the compared columns rather than by the columns themselves:
    # the same groups (nulls compare equal in both) at a fraction of the cost on wide string rows.
    # A collision needs two different rows with equal hashes: about n**2 / 2**65, 3e-6 at 10M rows.
    tol_us = None if tolerance is None else int(tol / pd.Timedelta(microseconds=1))
    if tol_us is not None and set(exact) == {*key_cols, timestamp_col}:
        # The key plus the time is the whole row (key_cols=None): one window does both checks.
        # Within a key, ordered by time then input order, a row equal to the one before it is an
        # exact duplicate, and the row before it carries the time of the last kept-or-near row
        # (an exact duplicate has the time of the row it repeats), which is what "near" compares.
        us = epoch_us(t, t[timestamp_col])  # integer time: TIMESTAMPTZ arithmetic is slow on DuckDB
        if key_cols and backend_name(t) == "duckdb":
            # nearly every key is its own partition: one ordered window over (key, time, row),
            # comparing the previous row's key, sorts in parallel without hash-partitioning first
            key = t[key_cols[0]] if len(key_cols) == 1 and t[key_cols[0]].type().is_integer() else hash64(
                t, ibis.struct({c: t[c] for c in key_cols}))
            t = t.mutate(__segkit_k=key, __segkit_us=us)
            w = ibis.window(order_by=[t.__segkit_k, t.__segkit_us, *([t[_ROW]] if has_row else [])])
            prev = ibis.ifelse(t.__segkit_k.lag().over(w) == t.__segkit_k, t.__segkit_us.lag().over(w), ibis.null("int64"))
            us = t.__segkit_us
        else:
            w = ibis.window(group_by=[ibis.struct({c: t[c] for c in key_cols}).hash()] if key_cols else None,
                            order_by=[us, *order])
            prev = us.lag().over(w)
        t = t.mutate(
            __segkit_exact=(prev == us).fill_null(False),
            __segkit_near=(prev.notnull() & (prev != us) & (us - prev <= tol_us)).fill_null(False),
        )
        t = t.drop(*[c for c in ("__segkit_k", "__segkit_us") if c in t.columns])
    else:
        exact_key = ibis.struct({c: t[c] for c in exact}).hash()
        w_exact = ibis.window(group_by=[exact_key], order_by=order or None)
        t = t.mutate(__segkit_exact=ibis.row_number().over(w_exact) > 0)
    if tol_us is not None and "__segkit_near" not in t.columns:
        us = epoch_us(t, t[timestamp_col])
        w_prev = ibis.window(
            group_by=[ibis.struct({c: t[c] for c in key_cols}).hash()] if key_cols else None,
            order_by=[us, *([t[_ROW]] if has_row else [])],
            preceding=(None, 1),
        )
        prev = ibis.ifelse(t["__segkit_exact"], ibis.null("int64"), us).max().over(w_prev)
        near = prev.notnull() & (us - prev <= tol_us)
        t = t.mutate(__segkit_near=near)
    elif tol_us is None:
        t = t.mutate(__segkit_near=ibis.literal(False))
    t = t.mutate(__segkit_near=t["__segkit_near"].fill_null(False))
    if flagged_only and run.frame is None:  # the cheap boolean test first: the labels only for flagged rows
        t = t.filter(t["__segkit_exact"] | t["__segkit_near"])
    flag = ibis.cases((t["__segkit_exact"], "exact_duplicate"), (t["__segkit_near"], "near_duplicate"), else_=ibis.null("string"))
    t = t.mutate(duplicate=flag).drop("__segkit_exact", "__segkit_near")
    out = run.result(t, ["duplicate"], {})
    if flagged_only and run.frame is not None:
        return out.filter(out.duplicate.notnull()) if isinstance(out, ibis.Table) else out[out["duplicate"].notna()]
    return out
