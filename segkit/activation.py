"""Activation: turn segment memberships into one personalization action per user, and diff runs.

The export of memberships for CRM and e-mail tools (CSV, Parquet, JSON Lines with a documented
schema and each segment's definition hash) is :func:`segkit.membership.export_membership`; this
module decides *what to do* with each member and *what changed* since the previous run.

Personalization plan
--------------------
A *mapping* says, per segment, which action to take, with a priority that settles users who are in
several segments. It comes from the parameters, as a list::

    mapping = [
        {"segment": "cart_abandoners", "priority": 1, "action": "email", "content": "cart reminder",
         "offer": "free shipping"},
        {"segment": "highly_engaged", "priority": 2, "action": "onsite_banner", "content": "new arrivals"},
    ]

or as a dict keyed by segment (``{"cart_abandoners": {"priority": 1, "action": "email"}, ...}``).
Keys of an entry: ``segment`` (list form only), ``priority`` (required, an integer, **lower wins**:
priority 1 beats priority 2), ``action`` (required text) and the optional texts ``channel``,
``content``, ``offer`` and ``message``. :func:`parse_mapping` validates it: an unknown key or
segment gets a did-you-mean hint, a repeated segment or a repeated priority is an error (two
entries with one priority would leave the choice to chance). ``default`` (the same keys, no
``segment`` or ``priority``) is the action for users in no mapped segment.

:func:`personalization_plan` returns one row per user: the mapped segment with the lowest priority
number among those the user is in, its action fields, ``n_segments`` (mapped segments the user is
in) and ``other_segments`` (the others, in priority order). Because priorities are distinct the
choice never ties; rows are ordered by ``user_id`` (as text), so the plan is byte-for-byte stable
across runs on the same inputs. :func:`plan_summary` counts users per chosen action and how many
users each segment lost to a higher-priority one.

Run-to-run diff
---------------
:func:`membership_diff` compares two runs' membership tables: per (user, segment), ``entered``
(in the current run only), ``left`` (in the previous run only) or ``stayed`` (both). Feed the
``entered`` rows to a "welcome to the segment" journey and the ``left`` rows to the job that
removes users from an audience. :func:`diff_summary` gives per segment the counts and the Jaccard
index of the two member sets (1.0: the same users; :func:`segkit.monitoring.membership_churn`
reads it as a stability measure).

Users are compared as text (``str(user_id)``), as in :mod:`segkit.membership`.

Examples
--------
>>> import pandas as pd
>>> m = pd.DataFrame({"user_id": ["a", "a", "b"], "segment": ["cart", "engaged", "engaged"]})
>>> plan = personalization_plan(m, [{"segment": "cart", "priority": 1, "action": "email"},
...                                 {"segment": "engaged", "priority": 2, "action": "banner"}])
>>> plan[["user_id", "segment", "action", "other_segments"]].values.tolist()
[['a', 'cart', 'email', 'engaged'], ['b', 'engaged', 'banner', '']]
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError, SchemaError, check_columns, did_you_mean, format_allowed
from .membership import _check_membership, _known_segments

__all__ = [
    "ACTION_FIELDS",
    "MAPPING_KEYS",
    "CHANGES",
    "Action",
    "ActionMap",
    "parse_mapping",
    "personalization_plan",
    "plan_summary",
    "membership_diff",
    "diff_summary",
    "Replay",
    "replay_run",
]

#: Text fields an action carries into the plan, in the plan's column order.
ACTION_FIELDS: tuple[str, ...] = ("action", "channel", "content", "offer", "message")
#: Keys allowed in one mapping entry (list form).
MAPPING_KEYS: tuple[str, ...] = ("segment", "priority") + ACTION_FIELDS
#: Values of :func:`membership_diff`'s ``change`` column, in output order.
CHANGES: tuple[str, ...] = ("entered", "left", "stayed")
#: Separator of ``other_segments`` (mapped segment names may not contain a comma).
SEPARATOR = ", "
#: ``plan_summary`` row of the users who got the default action.
DEFAULT_ROW = "(default)"

PLAN_COLUMNS: tuple[str, ...] = ("user_id", "segment", "priority") + ACTION_FIELDS + ("n_segments", "other_segments")


# --------------------------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One validated mapping entry: what to do with the members of ``segment``.

    Attributes
    ----------
    segment : str or None
        The segment; ``None`` for the default action.
    priority : int or None
        Lower wins when a user is in several mapped segments; ``None`` for the default action.
    action : str
        What to do (``"email"``, ``"onsite_banner"``, ``"push"``, ...).
    channel, content, offer, message : str or None
        Optional texts carried to the plan unchanged.
    """

    segment: str | None
    priority: int | None
    action: str
    channel: str | None = None
    content: str | None = None
    offer: str | None = None
    message: str | None = None

    def fields(self) -> dict[str, str | None]:
        """The action's text fields, in :data:`ACTION_FIELDS` order."""
        return {f: getattr(self, f) for f in ACTION_FIELDS}


@dataclass(frozen=True)
class ActionMap:
    """A validated personalization mapping (output of :func:`parse_mapping`).

    Attributes
    ----------
    rules : tuple of Action
        One per mapped segment, sorted by priority (lowest number first).
    default : Action or None
        The action for users in no mapped segment.
    """

    rules: tuple[Action, ...]
    default: Action | None = None

    @property
    def segments(self) -> list[str]:
        """Mapped segments in priority order."""
        return [str(r.segment) for r in self.rules]


def _text_field(value: Any, path: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        hint = " (quote numbers in YAML, e.g. offer: '10')" if isinstance(value, (int, float)) and not isinstance(
            value, bool) else ""
        raise ParameterError(path, value, message=f"Parameter {path!r} got {value!r}; it must be a non-empty text"
                             f"{hint}")
    return value


def _entry(obj: Any, path: str, *, segment: str | None, is_default: bool) -> Action:
    if not isinstance(obj, Mapping):
        raise ParameterError(path, obj, message=f"Parameter {path!r} must be a mapping of "
                             f"{format_allowed(ACTION_FIELDS if is_default else MAPPING_KEYS)}, got {type(obj).__name__}")
    allowed = ACTION_FIELDS if is_default else (MAPPING_KEYS if segment is None else MAPPING_KEYS[1:])
    for key in obj:
        if key not in allowed:
            why = ""
            if is_default and key in ("segment", "priority"):
                why = "; the default action applies to users in no mapped segment, so it has no segment or priority"
            elif segment is not None and key == "segment":
                why = f"; in the dict form the key ({segment!r}) names the segment"
            raise ParameterError(f"{path}.{key}", key, list(allowed),
                                 message=f"Unknown key {key!r} in {path!r};{did_you_mean(str(key), allowed)} "
                                 f"Allowed: {format_allowed(allowed)}{why}")
    if not is_default and segment is None:
        if "segment" not in obj:
            raise ParameterError(f"{path}.segment", None, message=f"{path!r} has no 'segment'; every entry names "
                                 "the segment its action is for")
        segment = obj["segment"]
    if not is_default:
        if not isinstance(segment, str) or not segment:
            raise ParameterError(f"{path}.segment", segment, message=f"Parameter '{path}.segment' got {segment!r}; "
                                 "it must be a segment name")
        if "," in segment:
            raise ParameterError(f"{path}.segment", segment, message=f"Segment name {segment!r} contains a comma; "
                                 "mapped segment names cannot (other_segments joins them with ', ')")
        if "priority" not in obj:
            raise ParameterError(f"{path}.priority", None, message=f"{path!r} ({segment!r}) has no 'priority'; "
                                 "give an integer, lower wins when a user is in several segments")
        prio = obj["priority"]
        if isinstance(prio, (bool, np.bool_)) or not isinstance(prio, (int, np.integer)):
            raise ParameterError(f"{path}.priority", prio, "an integer (lower wins)")
        priority: int | None = int(prio)
    else:
        priority = None
    if "action" not in obj:
        raise ParameterError(f"{path}.action", None, message=f"{path!r} has no 'action'; say what to do, "
                             "e.g. action: email")
    texts = {f: _text_field(obj.get(f), f"{path}.{f}", required=f == "action") for f in ACTION_FIELDS}
    return Action(segment=None if is_default else segment, priority=priority, **texts)  # type: ignore[arg-type]


def parse_mapping(mapping: Any, *, default: Mapping[str, Any] | None = None,
                  segments: Iterable[str] | None = None) -> ActionMap:
    """Validate a personalization mapping from the parameters.

    Parameters
    ----------
    mapping : list of dict, dict of dict or ActionMap
        List form: ``[{"segment": ..., "priority": ..., "action": ..., ...}, ...]``; dict form:
        ``{segment: {"priority": ..., "action": ..., ...}}``. See the module docstring for the keys.
    default : dict, optional
        Action for users in no mapped segment: ``action`` and optional ``channel``, ``content``,
        ``offer``, ``message``.
    segments : list of str, optional
        Known segment names (say, those of the definitions); a mapped segment not among them is
        an error with a did-you-mean hint. Default: segment names are not checked.

    Returns
    -------
    ActionMap
        Rules sorted by priority and the default action.

    Raises
    ------
    ParameterError
        Not a list or dict, empty, unknown key, missing ``action`` or ``priority``, non-integer
        priority, non-text field, repeated segment, repeated priority, unknown segment,
        ``default`` given together with an ActionMap that already has one.

    Examples
    --------
    >>> am = parse_mapping({"vip": {"priority": 2, "action": "call"}, "cart": {"priority": 1, "action": "email"}},
    ...                    default={"action": "newsletter"})
    >>> am.segments, am.default.action
    (['cart', 'vip'], 'newsletter')
    """
    if isinstance(mapping, ActionMap):
        if default is not None:
            if mapping.default is not None:
                raise ParameterError("default", default, message="default was given twice: the ActionMap already has "
                                     "a default action")
            mapping = ActionMap(mapping.rules, _entry(default, "default", segment=None, is_default=True))
        rules = list(mapping.rules)
        dflt = mapping.default
    else:
        if isinstance(mapping, Mapping):
            items = [(f"mapping.{k}", v, k) for k, v in mapping.items()]
            for _, _, k in items:
                if not isinstance(k, str) or not k:
                    raise ParameterError("mapping", k, message=f"mapping key {k!r} must be a segment name")
        elif isinstance(mapping, Sequence) and not isinstance(mapping, (str, bytes)):
            items = [(f"mapping[{i}]", v, None) for i, v in enumerate(mapping)]
        else:
            raise ParameterError("mapping", mapping, message="mapping must be a list of entries "
                                 "[{segment: ..., priority: ..., action: ...}, ...] or a dict {segment: {...}}, "
                                 f"got {type(mapping).__name__}")
        if not items:
            raise ParameterError("mapping", mapping, message="mapping must map at least one segment to an action")
        rules = [_entry(v, path, segment=k, is_default=False) for path, v, k in items]
        dflt = None if default is None else _entry(default, "default", segment=None, is_default=True)
    seen_seg: dict[str, int] = {}
    seen_prio: dict[int, str] = {}
    for r in rules:
        seg, prio = str(r.segment), int(r.priority)  # type: ignore[arg-type]
        if seg in seen_seg:
            raise ParameterError("mapping", seg, message=f"Segment {seg!r} is mapped twice; give each segment one "
                                 "action")
        if prio in seen_prio:
            raise ParameterError("mapping", prio, message=f"Priority {prio} is given to both {seen_prio[prio]!r} and "
                                 f"{seg!r}; priorities must be distinct (lower wins), so a user in both segments gets "
                                 "a defined action")
        seen_seg[seg] = prio
        seen_prio[prio] = seg
    if segments is not None:
        known = [str(s) for s in segments]
        for r in rules:
            if r.segment not in known:
                raise ParameterError("mapping", r.segment, known, message=f"Unknown segment {r.segment!r} in the "
                                     f"mapping;{did_you_mean(str(r.segment), known)} Known segments: "
                                     f"{format_allowed(known)}")
    rules.sort(key=lambda r: int(r.priority))  # type: ignore[arg-type]
    return ActionMap(tuple(rules), dflt)


# --------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------


def _user_list(users: Any) -> np.ndarray:
    if isinstance(users, pd.DataFrame):
        raise ParameterError("users", "DataFrame", message="users must be a list, Series or Index of user ids "
                             "(pass features['user_id'], not the whole table)")
    if isinstance(users, (str, bytes)) or not isinstance(users, Iterable):
        raise ParameterError("users", users, message="users must be a list, Series or Index of user ids, "
                             f"got {type(users).__name__}")
    values = pd.Series(list(users) if not isinstance(users, (pd.Series, pd.Index, np.ndarray)) else users)
    null = values.isna().to_numpy()
    if null.any():
        raise ParameterError("users", None, message=f"users holds {int(null.sum()):,} null id(s)")
    return values.astype(str).to_numpy(dtype=object)


def _text_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of text values in sorted order (like ``pd.factorize(sort=True)``), sorting only the distinct values.

    Arrow sorts UTF-8 bytewise, which is the code-point order Python's ``sorted`` uses.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    codes, uniques = pd.factorize(values, sort=False)
    uniques = np.asarray(uniques, dtype=object)
    if len(uniques) == 0:
        return codes.astype(np.int64), uniques
    order = pc.array_sort_indices(pa.array(uniques, type=pa.string())).to_numpy()
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return position[codes], uniques[order]


def _unique_int(values: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 values (a sort, cheaper than numpy's hash-based unique on large arrays)."""
    v = np.sort(values)
    return v[np.r_[True, v[1:] != v[:-1]]] if len(v) else v


def _other_segments(rank_of: np.ndarray, starts: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Per user (a run of ``rank_of`` from each start), the ranks after the first, as joined names."""
    n = len(starts)
    if n == 0:
        return np.array([], dtype=object)
    if len(names) <= 62:
        # each user's set of ranks as a bit mask (ranks are distinct per user): few distinct masks to render
        bits = np.left_shift(np.int64(1), rank_of.astype(np.int64))
        masks = np.add.reduceat(bits, starts) - bits[starts]
        uniq, inv = np.unique(masks, return_inverse=True)
        text = np.array([SEPARATOR.join(names[i] for i in range(len(names)) if int(m) >> i & 1) for m in uniq],
                        dtype=object)
        return text[inv]
    bounds = np.r_[starts, len(rank_of)]
    return np.array([SEPARATOR.join(names[int(r)] for r in rank_of[bounds[i] + 1:bounds[i + 1]]) for i in range(n)],
                    dtype=object)


def personalization_plan(
    membership: pd.DataFrame,
    mapping: Any,
    *,
    default: Mapping[str, Any] | None = None,
    users: Iterable[Any] | None = None,
    segments: Iterable[str] | None = None,
    user_col: str = "user_id",
) -> pd.DataFrame:
    """One personalization action per user, from the segments they are in and a priority mapping.

    Parameters
    ----------
    membership : DataFrame
        Membership table (:func:`segkit.segments.evaluate_segments`, a clustering or an intent
        model turned into ``user_id, segment`` rows): one row per (user, segment).
    mapping : list of dict, dict of dict or ActionMap
        Segment -> action with priorities; see :func:`parse_mapping` and the module docstring.
    default : dict, optional
        Action for users in no mapped segment (members of unmapped segments only, and the
        ``users`` who are in no segment). Without it those users get no row.
    users : list, Series or Index of user ids, optional
        The whole audience (say ``features["user_id"]``), so that users in no segment at all get
        the default action too. Only with ``default``.
    segments : list of str, optional
        Known segment names for the did-you-mean check of the mapping. Default:
        ``membership.attrs["segments"]`` (definition order, empty segments included) plus the
        segments that have members.
    user_col : str, default="user_id"
        The membership's user column (written as ``user_id``).

    Returns
    -------
    DataFrame
        One row per user, ordered by ``user_id`` (text): ``user_id``, ``segment`` (the chosen
        segment; <NA> for the default action), ``priority`` (Int64; <NA> for the default),
        ``action``, ``channel``, ``content``, ``offer``, ``message`` (string; <NA> when the entry
        does not give it), ``n_segments`` (mapped segments the user is in; 0 for the default) and
        ``other_segments`` (the other mapped segments, in priority order, joined by ``", "``;
        ``""`` when none). ``attrs["mapping"]`` holds the :class:`ActionMap`.

    Raises
    ------
    SchemaError
        The membership misses a column or has null users or segments.
    ParameterError
        Invalid mapping (see :func:`parse_mapping`), a mapped segment the membership does not
        know (did-you-mean), ``users`` without ``default``.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "b"], "segment": ["vip", "vip", "cart"]})
    >>> plan = personalization_plan(m, {"cart": {"priority": 1, "action": "email", "content": "cart reminder"},
    ...                                 "vip": {"priority": 2, "action": "call"}},
    ...                             default={"action": "newsletter"}, users=["a", "b", "c"])
    >>> plan[["user_id", "segment", "action", "content", "n_segments"]].astype(object).values.tolist()
    [['a', 'vip', 'call', <NA>, 1], ['b', 'cart', 'email', 'cart reminder', 2], ['c', <NA>, 'newsletter', <NA>, 0]]
    """
    _check_membership(membership, user_col=user_col)
    known = [str(s) for s in segments] if segments is not None else _known_segments(membership)
    amap = parse_mapping(mapping, default=default, segments=known)
    if users is not None and amap.default is None:
        raise ParameterError("users", None, message="users only matters with a default action (it lists the users "
                             "in no segment who get it); pass default={'action': ...} or drop users")
    users_m = membership[user_col].astype(str).to_numpy(dtype=object)
    extra_ids = _user_list(users) if users is not None else np.array([], dtype=object)
    # every id coded once, codes in text order, so sorting codes sorts users as text
    codes, ids = _text_codes(np.concatenate([users_m, extra_ids]))
    u_codes = codes[:len(users_m)]
    k = len(amap.rules)
    rank = pd.Index(amap.segments).get_indexer(membership["segment"].astype(str).to_numpy(dtype=object))
    mapped = rank >= 0
    # distinct (user, rank) pairs, ordered by user then rank (= priority order)
    keys = _unique_int(u_codes[mapped] * k + rank[mapped])
    user_of, rank_of = np.divmod(keys, k)
    starts = np.flatnonzero(np.r_[True, user_of[1:] != user_of[:-1]]) if len(keys) else np.array([], dtype=np.int64)
    chosen_users = user_of[starts]
    chosen_rank = rank_of[starts]
    n_seg = np.diff(np.r_[starts, len(keys)]).astype(np.int64)
    others = _other_segments(rank_of, starts, amap.segments)

    if amap.default is not None:
        pool = np.zeros(len(ids), dtype=bool)
        pool[u_codes] = True
        pool[codes[len(users_m):]] = True
        pool[chosen_users] = False
        default_users = np.flatnonzero(pool)
    else:
        default_users = np.array([], dtype=np.int64)
    order = np.argsort(np.r_[chosen_users, default_users], kind="stable")
    # per output row: index into the rules, k for the default action
    rule = np.r_[chosen_rank, np.full(len(default_users), k)][order]
    table = [*amap.rules, amap.default]
    out = pd.DataFrame({
        "user_id": pd.array(ids[np.r_[chosen_users, default_users][order]], dtype="string"),
        "segment": pd.array(np.array([r.segment if r is not None else None for r in table], dtype=object)[rule],
                            dtype="string"),
        "priority": pd.array(np.array([r.priority if r is not None else None for r in table], dtype=object)[rule],
                             dtype="Int64"),
        **{f: pd.array(np.array([getattr(r, f) if r is not None else None for r in table], dtype=object)[rule],
                       dtype="string") for f in ACTION_FIELDS},
        "n_segments": np.r_[n_seg, np.zeros(len(default_users), dtype=np.int64)][order],
        "other_segments": pd.array(np.r_[others, np.full(len(default_users), "", dtype=object)][order],
                                   dtype="string"),
    })
    out.attrs["mapping"] = amap
    return out


def plan_summary(plan: pd.DataFrame) -> pd.DataFrame:
    """Users per chosen action, and how many each segment lost to a higher-priority segment.

    Parameters
    ----------
    plan : DataFrame
        Output of :func:`personalization_plan`.

    Returns
    -------
    DataFrame
        One row per mapped segment in priority order (rules of ``plan.attrs["mapping"]``, those
        without users included; without attrs, the segments in the plan), then ``"(default)"``
        when a default action exists: ``segment``, ``priority`` (Int64), ``action``, ``channel``,
        ``content``, ``offer``, ``message``, ``n_users`` (users who get this action), ``share``
        (of the plan's users), ``n_eligible`` (plan users in the segment) and ``n_overridden``
        (eligible users who got a higher-priority segment's action instead).

    Raises
    ------
    SchemaError
        A plan column is missing.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "b"], "segment": ["vip", "vip", "cart"]})
    >>> plan = personalization_plan(m, [{"segment": "cart", "priority": 1, "action": "email"},
    ...                                 {"segment": "vip", "priority": 2, "action": "call"}])
    >>> plan_summary(plan)[["segment", "n_users", "n_eligible", "n_overridden"]].values.tolist()
    [['cart', 1, 1, 0], ['vip', 1, 2, 1]]
    """
    if not isinstance(plan, pd.DataFrame):
        raise ParameterError("plan", type(plan).__name__, message="plan must be the DataFrame personalization_plan "
                             "returns")
    check_columns(plan.columns, list(PLAN_COLUMNS), what="plan")
    amap = plan.attrs.get("mapping")
    seg = plan["segment"]
    total = len(plan)
    if isinstance(amap, ActionMap):
        rules = list(amap.rules)
        default = amap.default
    else:
        head = plan[seg.notna()].drop_duplicates("segment").sort_values("priority", kind="stable")
        rules = [Action(segment=str(r["segment"]), priority=int(r["priority"]),
                        **{f: None if pd.isna(r[f]) else str(r[f]) for f in ACTION_FIELDS}) for _, r in head.iterrows()]
        d = plan[seg.isna()]
        default = None if d.empty else Action(None, None, **{f: None if pd.isna(d.iloc[0][f]) else str(d.iloc[0][f])
                                                            for f in ACTION_FIELDS})
    chosen = seg.astype(object).where(seg.notna(), None).value_counts()
    eligible: dict[str, int] = {}
    for text in plan["other_segments"].astype(object).where(plan["other_segments"].notna(), ""):
        if text:
            for s in str(text).split(SEPARATOR):
                eligible[s] = eligible.get(s, 0) + 1
    rows = []
    for r in rules:
        n = int(chosen.get(r.segment, 0))
        elig = n + eligible.get(str(r.segment), 0)
        rows.append({"segment": r.segment, "priority": r.priority, **r.fields(), "n_users": n,
                     "n_eligible": elig, "n_overridden": elig - n})
    if default is not None:
        n = int(seg.isna().sum())
        rows.append({"segment": DEFAULT_ROW, "priority": None, **default.fields(), "n_users": n,
                     "n_eligible": n, "n_overridden": 0})
    cols = ["segment", "priority", *ACTION_FIELDS, "n_users", "share", "n_eligible", "n_overridden"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "share"])
    out.insert(cols.index("share"), "share", out["n_users"] / total if total else np.nan)
    return out.astype({"segment": "string", "priority": "Int64", **{f: "string" for f in ACTION_FIELDS},
                       "n_users": "int64", "share": "float64", "n_eligible": "int64", "n_overridden": "int64"})


# --------------------------------------------------------------------------------------------
# Diff between runs
# --------------------------------------------------------------------------------------------


def _hash_changes(previous: pd.DataFrame, current: pd.DataFrame, names: Sequence[str]) -> dict[str, bool | None]:
    hp = previous.attrs.get("hashes") or {}
    hc = current.attrs.get("hashes") or {}
    return {n: (hp[n] != hc[n]) if n in hp and n in hc else None for n in names}


def membership_diff(previous: pd.DataFrame, current: pd.DataFrame, *, segments: Iterable[str] | None = None,
                    user_col: str = "user_id") -> pd.DataFrame:
    """Who entered, left or stayed in each segment between two runs.

    Parameters
    ----------
    previous, current : DataFrame
        Membership tables of the previous and the current run (``user_col`` and ``segment``;
        repeated rows count once).
    segments : list of str, optional
        Segments to compare, in order. Default: the current run's segments
        (``attrs["segments"]`` then any other present), then those only the previous run has (a
        segment that disappeared: all its members ``left``).
    user_col : str, default="user_id"
        User column of both tables (written as ``user_id``).

    Returns
    -------
    DataFrame
        ``user_id``, ``segment`` and ``change`` (``"entered"``: member now, not before;
        ``"left"``: member before, not now; ``"stayed"``: both), all ``string``, ordered by
        segment, then change (entered, left, stayed), then user. ``attrs`` holds ``segments`` (the
        compared names, empty ones included, for :func:`diff_summary`), ``definition_changed``
        (per segment: True/False when both tables carry definition hashes, else None) and
        ``as_of`` (previous and current ``attrs["as_of"]``).

    Raises
    ------
    SchemaError
        A table misses a column or has null users or segments.
    ParameterError
        An unknown segment in ``segments`` (did-you-mean) or a repeated one.

    Examples
    --------
    >>> prev = pd.DataFrame({"user_id": ["a", "b"], "segment": ["x", "x"]})
    >>> cur = pd.DataFrame({"user_id": ["b", "c"], "segment": ["x", "x"]})
    >>> membership_diff(prev, cur).values.tolist()
    [['c', 'x', 'entered'], ['a', 'x', 'left'], ['b', 'x', 'stayed']]
    """
    for what, frame in (("previous", previous), ("current", current)):
        try:
            _check_membership(frame, user_col=user_col)
        except ParameterError:
            raise ParameterError(what, type(frame).__name__, message=f"{what} must be a membership DataFrame "
                                 f"(user and segment columns), got {type(frame).__name__}") from None
    union = list(dict.fromkeys(_known_segments(current) + _known_segments(previous)))
    if segments is None:
        names = union
    else:
        names = [segments] if isinstance(segments, str) else list(segments)
        for n in names:
            if not isinstance(n, str) or n not in union:
                raise ParameterError("segments", n, union, message=f"Unknown segment {n!r};"
                                     f"{did_you_mean(str(n), union)} Known segments: {format_allowed(union)}")
        dup = [n for i, n in enumerate(names) if n in names[:i]]
        if dup:
            raise ParameterError("segments", dup[0], message=f"Segment {dup[0]!r} is listed twice in segments")

    index = pd.Index(names)
    sides = []
    for frame in (previous, current):
        u = frame[user_col].astype(str).to_numpy(dtype=object)
        g = index.get_indexer(frame["segment"].astype(str).to_numpy(dtype=object))
        sides.append((u[g >= 0], g[g >= 0].astype(np.int64)))
    # users coded in text order, segments in the compared order: one int64 key per (user, segment)
    u_codes, u_uniques = _text_codes(np.concatenate([sides[0][0], sides[1][0]]))
    s_codes = np.concatenate([sides[0][1], sides[1][1]])
    keys = s_codes * max(len(u_uniques), 1) + u_codes.astype(np.int64)
    n_prev = len(sides[0][0])
    flag = np.zeros(0, dtype=np.int64)
    uniq = np.zeros(0, dtype=np.int64)
    if len(keys):
        k_prev, k_cur = _unique_int(keys[:n_prev]), _unique_int(keys[n_prev:])
        uniq = _unique_int(np.concatenate([k_prev, k_cur]))
        flag = np.zeros(len(uniq), dtype=np.int64)
        flag[np.searchsorted(uniq, k_prev)] += 1
        flag[np.searchsorted(uniq, k_cur)] += 2
    # flag 1: previous only (left), 2: current only (entered), 3: both (stayed)
    change_rank = np.array([-1, 1, 0, 2])[flag]
    seg_idx, user_idx = np.divmod(uniq, max(len(u_uniques), 1))
    order = np.lexsort((user_idx, change_rank, seg_idx))
    names_arr = np.array(names, dtype=object)
    out = pd.DataFrame({
        "user_id": pd.array(u_uniques[user_idx[order]], dtype="string"),
        "segment": pd.array(names_arr[seg_idx[order]], dtype="string"),
        "change": pd.array(np.array(CHANGES, dtype=object)[change_rank[order]], dtype="string"),
    })
    out.attrs.update({
        "segments": names,
        "definition_changed": _hash_changes(previous, current, names),
        "as_of": (previous.attrs.get("as_of"), current.attrs.get("as_of")),
    })
    return out


def diff_summary(diff: pd.DataFrame) -> pd.DataFrame:
    """Per segment: members before and now, entered, left, stayed and the Jaccard index.

    Parameters
    ----------
    diff : DataFrame
        Output of :func:`membership_diff`.

    Returns
    -------
    DataFrame
        One row per segment (``attrs["segments"]`` order, empty ones included; without attrs, by
        first appearance): ``segment``, ``n_previous`` (left + stayed), ``n_current`` (entered +
        stayed), ``entered``, ``left``, ``stayed``, ``jaccard`` (stayed / (entered + left +
        stayed): the Jaccard index of the two member sets; NaN when both are empty) and
        ``definition_changed`` (boolean, <NA> when unknown: a changed definition explains churn).

    Raises
    ------
    SchemaError
        A column is missing or ``change`` holds another value.

    Examples
    --------
    >>> prev = pd.DataFrame({"user_id": ["a", "b"], "segment": ["x", "x"]})
    >>> cur = pd.DataFrame({"user_id": ["b", "c"], "segment": ["x", "x"]})
    >>> diff_summary(membership_diff(prev, cur)).round(3).values.tolist()
    [['x', 2, 2, 1, 1, 1, 0.333, <NA>]]
    """
    if not isinstance(diff, pd.DataFrame):
        raise ParameterError("diff", type(diff).__name__, message="diff must be the DataFrame membership_diff returns")
    check_columns(diff.columns, ["user_id", "segment", "change"], what="membership diff")
    bad = ~diff["change"].isin(CHANGES).to_numpy()
    if bad.any():
        raise SchemaError([{"column": "change", "check": "isin", "count": int(bad.sum()),
                            "examples": diff.loc[bad].head(5),
                            "message": f"Column 'change' must hold {format_allowed(CHANGES)}; "
                            f"{int(bad.sum()):,} other value(s)"}], title="membership diff failed validation")
    names = list(diff.attrs.get("segments") or [])
    for s in diff["segment"].astype(str).unique():
        if s not in names:
            names.append(s)
    seg_codes = pd.Index(names).get_indexer(diff["segment"].astype(str).to_numpy(dtype=object))
    ch_codes = pd.Index(list(CHANGES)).get_indexer(diff["change"].astype(str).to_numpy(dtype=object))
    counts = np.bincount(seg_codes * len(CHANGES) + ch_codes, minlength=len(names) * len(CHANGES)).reshape(
        len(names), len(CHANGES))
    changed = diff.attrs.get("definition_changed") or {}
    e, l_, st = counts[:, 0], counts[:, 1], counts[:, 2]
    union = e + l_ + st
    with np.errstate(divide="ignore", invalid="ignore"):
        jac = np.where(union > 0, st / np.maximum(union, 1), np.nan)
    return pd.DataFrame({
        "segment": pd.array(names, dtype="string"),
        "n_previous": (l_ + st).astype("int64"),
        "n_current": (e + st).astype("int64"),
        "entered": e.astype("int64"),
        "left": l_.astype("int64"),
        "stayed": st.astype("int64"),
        "jaccard": jac.astype("float64"),
        "definition_changed": pd.array([None if changed.get(n) is None else bool(changed[n]) for n in names],
                                       dtype="boolean"),
    })


# --------------------------------------------------------------------------------------------
# The previous run, replayed from the event log
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """A run replayed at an earlier time (output of :func:`replay_run`).

    Attributes
    ----------
    as_of : Timestamp
        The time replayed (UTC).
    features : DataFrame
        The user features as they were at ``as_of``: built from the events up to then, plus the
        ``carried`` columns.
    membership : DataFrame
        The segments evaluated at ``as_of`` (:func:`segkit.evaluate_segments`).
    carried : tuple of str
        Columns of the current feature table that the events cannot rebuild (CRM attributes such
        as ``lifetime_value`` and ``is_vip``), copied by user from the current table.
    """

    as_of: pd.Timestamp
    features: pd.DataFrame
    membership: pd.DataFrame
    carried: tuple[str, ...]

    @property
    def event_features(self) -> pd.DataFrame:
        """``features`` without the carried columns: what the events said at ``as_of``, the
        table to compare with the current one for drift (the carried columns are today's values)."""
        return self.features.drop(columns=list(self.carried))


def replay_run(definitions: Any, events: Any, *, as_of: str | pd.Timestamp, features: pd.DataFrame | None = None,
               user_col: str = "user_id", timestamp_col: str = "timestamp", **feature_options: Any) -> Replay:
    """The run as it would have come out at ``as_of``: features and segments from the events up to then.

    Use it for the "previous run" of :func:`membership_diff` and
    :func:`segkit.monitoring.feature_drift` when no earlier run was saved: the same definitions,
    evaluated on the same event log cut at ``as_of``, so later events change nothing. Columns of
    ``features`` (the current run's table) that the events cannot rebuild are carried over by user:
    a CRM attribute has no history in the event log, so the replay uses today's value (users the
    current table lacks get a missing value). Pass ``crm=...`` instead to rebuild those columns from
    a CRM table.

    Parameters
    ----------
    definitions : Segment, list of Segment, YAML path or mapping
        As for :func:`segkit.evaluate_segments`.
    events : DataFrame, Parquet path or Ibis table
        The cleaned, sessionized events of the current run (all of them: the cut is made here).
    as_of : str or Timestamp
        The time to replay (naive values are UTC); at or after the first event.
    features : DataFrame, optional
        The current run's user features, the source of the carried columns.
    user_col, timestamp_col : str
        Key and time columns of the events (``user_col`` also keys ``features``).
    **feature_options
        Passed to :func:`segkit.build_user_features` (``crm``, ``heartbeat_event``, ``gap_cap``, ...).

    Returns
    -------
    Replay

    Raises
    ------
    ParameterError
        ``as_of`` is not a timestamp or is before the first event, ``features`` is not a DataFrame,
        or a definition is invalid.
    SchemaError
        ``features`` has no ``user_col`` column.
    """
    import ibis

    from .engine import as_table, to_pandas
    from .features import _as_of_literal, build_user_features
    from .segments import evaluate_segments

    when = _as_of_literal(as_of)
    if features is not None and not isinstance(features, pd.DataFrame):
        raise ParameterError("features", type(features).__name__, message="features must be the current run's user "
                             "feature table (a DataFrame)")
    if features is not None:
        check_columns(features.columns, [user_col], what="features")
    if "as_of" in feature_options or "sessions" in feature_options:
        raise ParameterError(next(k for k in ("as_of", "sessions") if k in feature_options), "given",
                             message="replay_run sets as_of itself and rebuilds the sessions up to it")
    t = as_table(events)  # a path is read once: the features and the segments query this table
    check_columns(t.columns, [user_col, timestamp_col], what="events")
    source: Any = events if isinstance(events, pd.DataFrame) else t
    first = to_pandas(t.aggregate(first=t[timestamp_col].min()))["first"].iloc[0]
    if pd.isna(first) or when < pd.Timestamp(first):
        raise ParameterError("as_of", str(when), message=f"Parameter 'as_of' is {when}, before the first event "
                             f"({'none: the events are empty' if pd.isna(first) else pd.Timestamp(first)}): there was no run to replay then")
    rebuilt = build_user_features(source, as_of=when, user_col=user_col, timestamp_col=timestamp_col, **feature_options)
    assert isinstance(rebuilt, pd.DataFrame)
    carried: tuple[str, ...] = ()
    if features is not None:
        carried = tuple(c for c in features.columns if c not in rebuilt.columns)
        if carried:
            static = features[[user_col, *carried]].drop_duplicates(user_col)
            rebuilt = rebuilt.merge(static.astype({user_col: rebuilt[user_col].dtype}), on=user_col, how="left")
    # the events up to as_of only: users first seen later are not in the replayed universe either
    if isinstance(source, pd.DataFrame):
        upto: Any = source[source[timestamp_col] <= when]
    else:
        upto = t.filter(t[timestamp_col] <= ibis.literal(when.to_pydatetime(), type=t[timestamp_col].type()))
    membership = evaluate_segments(definitions, events=upto, features=rebuilt, as_of=when, user_col=user_col,
                                   timestamp_col=timestamp_col)
    return Replay(as_of=when, features=rebuilt, membership=membership, carried=carried)
