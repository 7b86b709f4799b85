"""Tests of segkit.segments: definitions, validation, and evaluation against a brute-force reference.

The reference evaluator below (``_Ref``) implements the documented semantics literally, in pure
Python, one user at a time: it enumerates every chain of events for sequences and counts events
after every anchor. Property tests compare the engine (Ibis on DuckDB) with it on random event
logs with many tied timestamps.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segkit.errors import ParameterError, SchemaError
from segkit.segments import (
    SESSION_START,
    After,
    AllOf,
    AnyOf,
    Count,
    Did,
    FeatureCondition,
    Not,
    Percentile,
    Segment,
    Step,
    Then,
    after,
    all_of,
    any_of,
    count,
    definition_hash,
    did,
    evaluate_segments,
    feature,
    load_segments,
    not_,
    not_followed_by,
    parse_segments,
    percentile,
    segment_sizes,
    step,
    then,
    validate_segments,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2024-01-01", tz="UTC")
US = 1_000_000
MIN = 60 * US


def _ts(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def _events(rows, *, sessions: bool = True, gap: float = 5) -> pd.DataFrame:
    """rows: (user, minute, event[, item_id[, category[, price]]]); sessions split at gaps > ``gap`` minutes."""
    cols = ["user_id", "minute", "event", "item_id", "category", "price"]
    full = [tuple(r) + (None,) * (len(cols) - len(r)) for r in rows]
    df = pd.DataFrame(full, columns=cols)
    df["timestamp"] = T0 + pd.to_timedelta(df["minute"].astype("float64"), unit="min")
    for c in ("user_id", "event", "item_id", "category"):
        df[c] = df[c].astype("string")
    df["price"] = df["price"].astype("float64")
    if sessions:
        df = df.sort_values(["user_id", "minute"], kind="stable")
        new = df.groupby("user_id")["minute"].diff().isna() | (df.groupby("user_id")["minute"].diff() > gap)
        idx = new.astype(int).groupby(df["user_id"]).cumsum() - 1
        df["session_id"] = (df["user_id"] + "-" + idx.astype(str)).astype("string")
    return df.drop(columns="minute").reset_index(drop=True)


def _members(m: pd.DataFrame, name: str) -> dict[str, pd.Timestamp]:
    part = m[m["segment"] == name]
    return dict(zip(part["user_id"].astype(str), part["entered_at"]))


def _eval1(cond, ev, **kw) -> dict[str, pd.Timestamp]:
    return _members(evaluate_segments([Segment("s", cond)], events=ev, **kw), "s")


# --------------------------------------------------------------------------------------------
# The brute-force reference
# --------------------------------------------------------------------------------------------


class _Ref:
    """Pure-Python evaluation of the documented semantics (times in microseconds)."""

    def __init__(self, ev: pd.DataFrame, feats: pd.DataFrame | None, as_of_us: int | None):
        rows = []
        for rid, r in enumerate(ev.itertuples(index=False)):
            rows.append({
                "rid": rid, "user": str(r.user_id), "us": int(r.timestamp.value // 1000), "event": str(r.event),
                "virtual": False, "session": getattr(r, "session_id", None),
                "item_id": None if pd.isna(r.item_id) else str(r.item_id),
                "category": None if pd.isna(r.category) else str(r.category),
                "price": None if pd.isna(r.price) else float(r.price),
            })
        self.asof = as_of_us if as_of_us is not None else (max(r["us"] for r in rows) if rows else None)
        rows = [r for r in rows if self.asof is None or r["us"] <= self.asof]
        if "session_id" in ev.columns:
            starts: dict[tuple, int] = {}
            for r in rows:
                key = (r["user"], r["session"])
                starts[key] = min(starts.get(key, r["us"]), r["us"])
            for i, ((u, s), us) in enumerate(sorted(starts.items())):
                rows.append({"rid": -1 - i, "user": u, "us": us, "event": None, "virtual": True, "session": s,
                             "item_id": None, "category": None, "price": None})
        self.by_user: dict[str, list[dict]] = {}
        for r in rows:
            self.by_user.setdefault(r["user"], []).append(r)
        self.feats = feats
        users = set(self.by_user)
        if feats is not None:
            users |= set(feats["user_id"].astype(str))
        self.users = sorted(users)

    # -- steps ----------------------------------------------------------------------------
    @staticmethod
    def match(s: Step, e: dict) -> bool:
        if s.virtual:
            return e["virtual"]
        if e["virtual"] or e["event"] not in s.event:
            return False
        for col, op, v in s.where:
            x = e[col]
            if x is None:
                return False
            ok = {"==": lambda: x == v, "!=": lambda: x != v, ">": lambda: x > v, ">=": lambda: x >= v,
                  "<": lambda: x < v, "<=": lambda: x <= v, "in": lambda: x in v}[op]()
            if not ok:
                return False
        return True

    # -- leaves ---------------------------------------------------------------------------
    def did(self, c: Did, evs: list[dict]):
        m = sorted(e["us"] for e in evs if self.match(c.step, e))
        n = c.at_least
        if c.window == "sliding":
            w = int(c.within / pd.Timedelta(microseconds=1))
            ends = [t for t in m if sum(1 for x in m if t - w <= x <= t) >= n]
            return min(ends) if ends else None
        if c.within is not None:
            w = int(c.within / pd.Timedelta(microseconds=1))
            m = [x for x in m if self.asof - w <= x <= self.asof]
        return m[n - 1] if len(m) >= n else None

    def chains_end(self, c: Then, evs: list[dict]) -> dict[int, dict]:
        """rid -> event of every last-step event that completes a valid chain."""
        real = [e for e in evs if not e["virtual"]]
        out: dict[int, dict] = {}

        def between(a: dict, b: dict) -> bool:
            pool = real if c.scope == "any_session" else [e for e in real if e["session"] == a["session"]]
            return any(a["us"] < x["us"] < b["us"] for x in pool if x["rid"] not in (a["rid"], b["rid"]))

        def ext(chain: list[dict]) -> None:
            i = len(chain)
            if i == len(c.steps):
                if c.within is None or chain[-1]["us"] - chain[0]["us"] <= c.within / pd.Timedelta(microseconds=1):
                    out[chain[-1]["rid"]] = chain[-1]
                return
            s, prev = c.steps[i], chain[-1]
            for e in evs:
                if e["rid"] == prev["rid"] or not self.match(s, e) or e["us"] < prev["us"]:
                    continue
                if s.within is not None and e["us"] - prev["us"] > s.within / pd.Timedelta(microseconds=1):
                    continue
                if c.scope == "same_session" and e["session"] != chain[0]["session"]:
                    continue
                if any(e[col] is None or e[col] != chain[0][col] for col in c.same):
                    continue
                if c.mode == "directly" and between(prev, e):
                    continue
                ext(chain + [e])

        for e in evs:
            if self.match(c.steps[0], e) and all(e[col] is not None for col in c.same):
                ext([e])
        return out

    def then(self, c: Then, evs: list[dict]):
        ends = self.chains_end(c, evs)
        return min((e["us"] for e in ends.values()), default=None)

    def after(self, c: After, evs: list[dict]):
        if isinstance(c.anchor, Then):
            anchors = list(self.chains_end(c.anchor, evs).values())
        else:
            anchors = [e for e in evs if self.match(c.anchor, e)]
        anchors = [a for a in anchors if all(a[col] is not None for col in c.same)]
        if c.which == "last" and anchors:
            last = max(a["us"] for a in anchors)
            anchors = [a for a in anchors if a["us"] == last]
        w = None if c.within is None else int(c.within / pd.Timedelta(microseconds=1))
        best = None
        for a in anchors:
            times = [a["us"]]
            ok = True
            for k in c.counts:
                xs = sorted(x["us"] for x in evs if x["rid"] != a["rid"] and self.match(k.step, x)
                            and all(x[col] == a[col] for col in c.same)
                            and (c.scope == "any_session" or x["session"] == a["session"])
                            and a["us"] <= x["us"] and (w is None or x["us"] <= a["us"] + w))
                n = len(xs)
                censor = k.high is not None and w is not None
                if n < k.low or (k.high is not None and n > k.high) or (censor and a["us"] + w > self.asof):
                    ok = False
                    break
                if k.low > 0:
                    times.append(xs[k.low - 1])
                if censor:
                    times.append(a["us"] + w)
            if ok:
                t = max(times)
                best = t if best is None else min(best, t)
        return best

    def feature_sat(self, c: FeatureCondition, user: str) -> bool:
        f = self.feats.set_index(self.feats["user_id"].astype(str))
        if user not in f.index:
            return False
        x = f.loc[user, c.feature]
        if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
            return False
        vals = pd.to_numeric(self.feats[c.feature], errors="coerce").dropna().to_numpy(dtype=float)

        def thr(v):
            return float(np.percentile(vals, v.q, method="linear")) if isinstance(v, Percentile) else v

        op, v = c.op, c.value
        if op == "top_percent":
            op, v = ">=", Percentile(100 - v)
        if op == "bottom_percent":
            op, v = "<=", Percentile(v)
        if op == "between":
            return thr(v[0]) <= x <= thr(v[1])
        if op == "in":
            return x in v
        t = thr(v)
        return {">": x > t, ">=": x >= t, "<": x < t, "<=": x <= t, "==": x == t, "!=": x != t}[op]

    # -- combination ----------------------------------------------------------------------
    def eval(self, c, user: str):
        """(satisfied, time or None)"""
        evs = self.by_user.get(user, [])
        if isinstance(c, AllOf):
            parts = [self.eval(x, user) for x in c.conditions]
            if not all(p[0] for p in parts):
                return False, None
            times = [p[1] for p in parts if p[1] is not None]
            return True, max(times) if times else None
        if isinstance(c, AnyOf):
            parts = [self.eval(x, user) for x in c.conditions]
            times = [p[1] for p in parts if p[0] and p[1] is not None]
            return any(p[0] for p in parts), min(times) if times else None
        if isinstance(c, Not):
            return not self.eval(c.condition, user)[0], None
        if isinstance(c, FeatureCondition):
            return self.feature_sat(c, user), None
        if self.asof is None:
            return False, None
        t = {Did: self.did, Then: self.then, After: self.after}[type(c)](c, evs)
        return t is not None, t

    def members(self, c) -> dict[str, pd.Timestamp]:
        out = {}
        for u in self.users:
            sat, t = self.eval(c, u)
            if sat:
                t = self.asof if t is None else t
                out[u] = pd.Timestamp(t * 1000, tz="UTC") if t is not None else pd.NaT
        return out


# --------------------------------------------------------------------------------------------
# Random event logs and conditions
# --------------------------------------------------------------------------------------------

USERS = ["u0", "u1", "u2", "u3", "u5", "u6"]
EVENTS = ["a", "b", "c"]
WINDOWS = ["1m", "2m", "3m", "5m", "10m"]


@st.composite
def event_logs(draw, max_rows: int = 30):
    n = draw(st.integers(0, max_rows))
    rows = []
    for _ in range(n):
        rows.append((
            draw(st.sampled_from(USERS)),
            draw(st.integers(0, 24)),  # whole minutes: many ties, many events exactly at window bounds
            draw(st.sampled_from(EVENTS)),
            draw(st.sampled_from(["p1", "p2", None])),
            draw(st.sampled_from(["x", "y", None])),
            draw(st.sampled_from([1.0, 2.0, 3.0, None])),
        ))
    return _events(rows, gap=draw(st.sampled_from([3, 5, 100])))


def _feature_table(draw) -> pd.DataFrame:
    users = USERS + ["u4"]  # u4 has features but no events
    return pd.DataFrame({
        "user_id": pd.Series(users, dtype="string"),
        "f1": [draw(st.sampled_from([0.0, 1.5, 2.0, 3.0, np.nan])) for _ in users],
        "f2": [draw(st.integers(0, 4)) for _ in users],
        "label": pd.Series([draw(st.sampled_from(["m", "d", "t"])) for _ in users], dtype="string"),
        "flag": [draw(st.booleans()) for _ in users],
    })


wheres = st.sampled_from([None, {"item_id": "p1"}, {"item_id": ["p1", "p2"]}, {"category": {"!=": "x"}},
                          {"price": {">=": 2}}, {"price": {">": 1, "<=": 3}}])


@st.composite
def steps(draw, *, virtual: bool = True, within: bool = False):
    choices = ["a", "b", "c", ("a", "b")] + ([SESSION_START] if virtual else [])
    ev = draw(st.sampled_from(choices))
    if ev == SESSION_START:
        return step(ev)
    w = draw(st.sampled_from([None] + WINDOWS)) if within else None
    return step(ev, where=draw(wheres), within=w)


@st.composite
def feature_conditions(draw):
    kind = draw(st.sampled_from(["cmp", "pct", "between", "in", "top", "bottom", "label", "flag"]))
    if kind == "cmp":
        return FeatureCondition(draw(st.sampled_from(["f1", "f2"])), draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="])),
                                draw(st.sampled_from([0, 1.5, 2, 3])))
    if kind == "pct":
        return FeatureCondition(draw(st.sampled_from(["f1", "f2"])), draw(st.sampled_from([">", ">=", "<", "<="])),
                                percentile(draw(st.sampled_from([0, 25, 50, 90, 100]))))
    if kind == "between":
        lo = draw(st.sampled_from([0, 1, 2, percentile(10), percentile(50)]))
        hi = draw(st.sampled_from([2, 3, percentile(60), percentile(90)]))
        assume(not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi))
        assume(not (isinstance(lo, Percentile) and isinstance(hi, Percentile) and lo.q > hi.q))
        return feature(draw(st.sampled_from(["f1", "f2"]))).between(lo, hi)
    if kind == "in":
        return feature("f2").isin(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    if kind == "top":
        return feature(draw(st.sampled_from(["f1", "f2"]))).top_percent(draw(st.sampled_from([10, 25, 50, 100])))
    if kind == "bottom":
        return feature(draw(st.sampled_from(["f1", "f2"]))).bottom_percent(draw(st.sampled_from([10, 50])))
    if kind == "label":
        return feature("label").isin(["m", "t"]) if draw(st.booleans()) else (feature("label") != "d")
    return feature("flag") == draw(st.booleans())


@st.composite
def did_conditions(draw):
    w = draw(st.sampled_from([None] + WINDOWS))
    window = None if w is None else draw(st.sampled_from(["last", "sliding"]))
    return did(draw(steps()), at_least=draw(st.integers(1, 3)), within=w, window=window)


@st.composite
def then_conditions(draw, *, session: bool = True):
    mode = draw(st.sampled_from(["eventually", "directly"]))
    same = draw(st.sampled_from([(), ("item_id",)]))
    virtual = mode == "eventually" and not same
    k = draw(st.integers(2, 3))
    ss = [draw(steps(virtual=virtual))] + [draw(steps(virtual=virtual, within=True)) for _ in range(k - 1)]
    return then(*ss, within=draw(st.sampled_from([None] + WINDOWS)), mode=mode,
                scope=draw(st.sampled_from(["any_session", "same_session"] if session else ["any_session"])), same=same)


@st.composite
def counts(draw, virtual: bool):
    op = draw(st.sampled_from([">", ">=", "<", "<=", "==", "between"]))
    if op == "between":
        lo = draw(st.integers(0, 2))
        v = (lo, lo + draw(st.integers(0, 2)))
        assume(v != (0, 0) or True)
    else:
        v = draw(st.integers(0, 3))
        assume(not (op == ">=" and v == 0) and not (op == "<" and v == 0))
    return Count(draw(steps(virtual=virtual)), op, v)


@st.composite
def after_conditions(draw):
    same = draw(st.sampled_from([(), ("item_id",)]))
    anchor = draw(st.one_of(steps(virtual=not same), then_conditions()))
    cs = tuple(draw(counts(virtual=not same)) for _ in range(draw(st.integers(1, 2))))
    try:
        return After(anchor, cs, draw(st.sampled_from([None] + WINDOWS)), draw(st.sampled_from(["some", "last"])),
                     draw(st.sampled_from(["any_session", "same_session"])), same)
    except ParameterError:  # contradictory counts on one step
        assume(False)


def combos(leaf):
    def extend(children):
        return st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda cs: AllOf(tuple(cs))),
            st.lists(children, min_size=1, max_size=3).map(lambda cs: AnyOf(tuple(cs))),
            children.map(Not),
        )

    return st.recursive(leaf, extend, max_leaves=5)


def _check(ev: pd.DataFrame, conds, feats=None, as_of_min=None):
    as_of = None if as_of_min is None else _ts(as_of_min)
    segs = [Segment(f"s{i}", c) for i, c in enumerate(conds)]
    m = evaluate_segments(segs, events=ev, features=feats, as_of=as_of)
    ref = _Ref(ev, feats, None if as_of is None else int(as_of.value // 1000))
    for s in segs:
        got, want = _members(m, s.name), ref.members(s.condition)
        assert got == want, f"{s.name}: {s.condition.to_dict()}\nengine {got}\nref    {want}"


# Each example runs a few DuckDB queries (~50 ms of Ibis compilation each), so the default keeps
# the file fast; SEGKIT_PROPERTY_EXAMPLES=300 runs a thorough pass.
N_EXAMPLES = int(os.environ.get("SEGKIT_PROPERTY_EXAMPLES", "6"))
PROP = settings(max_examples=N_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@PROP
@given(data=st.data())
def test_feature_operators_match_reference(data):
    feats = _feature_table(data.draw)
    conds = [data.draw(feature_conditions()) for _ in range(4)]
    _check(_events([("u0", 0, "a")]), conds, feats)


@PROP
@given(data=st.data())
def test_feature_combinators_match_reference(data):
    feats = _feature_table(data.draw)
    conds = []
    for _ in range(3):
        try:
            conds.append(data.draw(combos(feature_conditions())))
        except ParameterError:  # contradictory bounds in one all-group
            pass
    assume(conds)
    _check(_events([("u0", 0, "a"), ("u1", 1, "b")]), conds, feats)


@PROP
@given(ev=event_logs(), data=st.data())
def test_did_matches_reference(ev, data):
    conds = [data.draw(did_conditions()) for _ in range(4)]
    _check(ev, conds, as_of_min=data.draw(st.sampled_from([None, 10, 30])))


@PROP
@given(ev=event_logs(), data=st.data())
def test_then_matches_reference(ev, data):
    conds = [data.draw(then_conditions()) for _ in range(3)]
    _check(ev, conds)


@PROP
@given(ev=event_logs(), data=st.data())
def test_after_matches_reference(ev, data):
    conds = [data.draw(after_conditions()) for _ in range(3)]
    _check(ev, conds, as_of_min=data.draw(st.sampled_from([None, 12, 30])))


@PROP
@given(ev=event_logs(max_rows=16), data=st.data())
def test_nested_behavioral_and_feature_conditions_match_reference(ev, data):
    feats = _feature_table(data.draw)
    leaf = st.one_of(feature_conditions(), did_conditions(), then_conditions(), after_conditions())
    conds = []
    for _ in range(2):
        try:
            conds.append(data.draw(combos(leaf)))
        except ParameterError:
            pass
    assume(conds)
    _check(ev, conds, feats)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_yaml_round_trip_and_hash(data):
    leaf = st.one_of(feature_conditions(), did_conditions(), then_conditions(), after_conditions())
    try:
        cond = data.draw(combos(leaf))
    except ParameterError:
        assume(False)
    seg = Segment("s", cond, "d")
    text = yaml.safe_dump({"segments": {"s": seg.to_dict()}}, sort_keys=False)
    back = parse_segments(yaml.safe_load(text))[0]
    assert back == seg
    assert definition_hash(back) == definition_hash(seg)


# --------------------------------------------------------------------------------------------
# Edges: window bounds, ties, users without events
# --------------------------------------------------------------------------------------------


def test_then_window_is_inclusive_at_the_bound():
    ev = _events([("u", 0, "a"), ("u", 10, "b"), ("v", 0, "a"), ("v", 10.001, "b")])
    assert set(_eval1(then("a", "b", within="10m"), ev)) == {"u"}


def test_then_counts_b_at_the_same_timestamp_as_a():
    ev = _events([("u", 5, "b"), ("u", 5, "a")])
    got = _eval1(then("a", "b", within="1m"), ev)
    assert got == {"u": _ts(5)}
    # ... and in both orders, since the order of tied events is unknown
    assert set(_eval1(then("b", "a"), ev)) == {"u"}


def test_then_needs_a_different_event_for_each_consecutive_step():
    ev = _events([("u", 0, "a"), ("v", 0, "a"), ("v", 0, "a"), ("w", 0, "a"), ("w", 3, "a")])
    assert set(_eval1(then("a", "a"), ev)) == {"v", "w"}


def test_then_b_before_a_does_not_count():
    ev = _events([("u", 0, "b"), ("u", 1, "a")])
    assert _eval1(then("a", "b"), ev) == {}


def test_then_entered_at_is_the_event_completing_the_first_sequence():
    ev = _events([("u", 0, "a"), ("u", 2, "b"), ("u", 3, "a"), ("u", 4, "b")])
    assert _eval1(then("a", "b"), ev) == {"u": _ts(2)}


def test_then_per_step_window():
    ev = _events([("u", 0, "a"), ("u", 1, "b"), ("u", 9, "b"), ("u", 11, "c")])
    # a -> b within 10m then c within 2m of that b: only the b at 9 works
    assert _eval1(then("a", step("b", within="10m"), step("c", within="2m")), ev) == {"u": _ts(11)}
    assert _eval1(then("a", step("b", within="5m"), step("c", within="2m")), ev) == {}


def test_then_directly_with_ties():
    ev = _events([("u", 0, "a"), ("u", 1, "x"), ("u", 1, "b"), ("v", 0, "a"), ("v", 1, "x"), ("v", 2, "b")])
    # u: x is tied with b, so it is not strictly between a and b; v: x lies between
    assert set(_eval1(then("a", "b", mode="directly"), ev)) == {"u"}
    assert set(_eval1(then("a", "b"), ev)) == {"u", "v"}


def test_then_same_session_and_same_item():
    ev = _events([("u", 0, "a", "p1"), ("u", 20, "b", "p1"),  # new session (gap > 5m)
                  ("v", 0, "a", "p1"), ("v", 1, "b", "p2"),  # other item
                  ("w", 0, "a", "p1"), ("w", 1, "b", "p1")])
    assert set(_eval1(then("a", "b", scope="same_session"), ev)) == {"v", "w"}
    assert set(_eval1(then("a", "b", same="item_id"), ev)) == {"u", "w"}


def test_missing_same_values_never_match():
    ev = _events([("u", 0, "a", None), ("u", 1, "b", None)])
    assert _eval1(then("a", "b", same="item_id"), ev) == {}


def test_did_last_window_is_inclusive_and_relative_to_as_of():
    ev = _events([("u", 0, "a"), ("u", 10, "a"), ("v", 0, "a"), ("v", 20, "c")])
    # as_of = 20 (last event): u's a at 10 is exactly 10m before it
    assert _eval1(did("a", within="10m"), ev) == {"u": _ts(10)}
    assert _eval1(did("a", within="10m"), ev, as_of=_ts(5)) == {"u": _ts(0), "v": _ts(0)}


def test_did_sliding_finds_any_window():
    ev = _events([("u", 0, "a"), ("u", 5, "a"), ("u", 10, "a"), ("u", 30, "a"), ("u", 40, "a")])
    assert _eval1(did("a", at_least=3, within="10m", window="sliding"), ev) == {"u": _ts(10)}
    assert _eval1(did("a", at_least=3, within="9m", window="sliding"), ev) == {}
    assert _eval1(did("a", at_least=3, within="10m", window="last"), ev) == {}


def test_did_counts_tied_events():
    ev = _events([("u", 3, "a"), ("u", 3, "a"), ("u", 3, "a")])
    assert _eval1(did("a", at_least=3, within="1m", window="sliding"), ev) == {"u": _ts(3)}


def test_session_start_counts_visits():
    ev = _events([("u", 0, "a"), ("u", 10, "a"), ("u", 20, "a"), ("v", 0, "a"), ("v", 1, "a")])
    got = _eval1(did(SESSION_START, at_least=3, within="20m", window="sliding"), ev)
    assert got == {"u": _ts(20)}


def test_not_followed_by_some_vs_last():
    ev = _events([("u", 0, "add_to_cart"), ("u", 1490, "add_to_cart"), ("u", 1500, "purchase"), ("u", 2000, "c")])
    some = not_followed_by("add_to_cart", "purchase", within="24h")
    last = not_followed_by("add_to_cart", "purchase", within="24h", which="last")
    assert _eval1(some, ev, as_of=_ts(3000)) == {"u": _ts(24 * 60)}  # entered when the 24 h had passed
    assert _eval1(last, ev, as_of=_ts(3000)) == {}


def test_not_followed_by_waits_for_the_window_to_end():
    ev = _events([("u", 0, "add_to_cart")])
    cond = not_followed_by("add_to_cart", "purchase", within="24h")
    assert _eval1(cond, ev, as_of=_ts(24 * 60 - 1)) == {}
    assert _eval1(cond, ev, as_of=_ts(24 * 60)) == {"u": _ts(24 * 60)}


def test_purchase_at_the_same_timestamp_prevents_abandonment():
    ev = _events([("u", 0, "add_to_cart"), ("u", 0, "purchase")])
    assert _eval1(not_followed_by("add_to_cart", "purchase", within="1h"), ev, as_of=_ts(120)) == {}


def test_count_after_anchor_and_entered_at():
    ev = _events([("u", 0, "add_to_cart"), ("u", 1, "cart_view"), ("u", 2, "cart_view"), ("u", 3, "cart_view"),
                  ("v", 0, "add_to_cart"), ("v", 1, "cart_view"), ("v", 2, "cart_view")])
    got = _eval1(after("add_to_cart", count("cart_view") > 2), ev)
    assert got == {"u": _ts(3)}  # the third cart view
    both = after("add_to_cart", count("cart_view") > 2, count("purchase") == 0, within="10m")
    assert _eval1(both, ev, as_of=_ts(60)) == {"u": _ts(10)}


def test_count_excludes_the_anchor_itself():
    ev = _events([("u", 0, "a"), ("u", 1, "a")])
    assert set(_eval1(after("a", count("a") >= 1), ev)) == {"u"}  # the first a is followed by the second
    assert set(_eval1(after("a", count("a") >= 2), ev)) == set()


def test_sequence_anchor_with_same_item_then_no_purchase():
    ev = _events([("u", 0, "page_view", "p1"), ("u", 1, "add_to_cart", "p1"),
                  ("v", 0, "page_view", "p1"), ("v", 1, "add_to_cart", "p2"),
                  ("w", 0, "page_view", "p1"), ("w", 1, "add_to_cart", "p1"), ("w", 5, "purchase")])
    cond = not_followed_by(then("page_view", "add_to_cart", same="item_id"), "purchase", within="1h")
    assert _eval1(cond, ev, as_of=_ts(600)) == {"u": _ts(61)}


def test_where_filters_on_steps():
    ev = _events([("u", 0, "page_view", "p1", "shoes"), ("v", 0, "page_view", "p2", "bags"),
                  ("w", 0, "page_view", None, None)])
    assert set(_eval1(did("page_view", where={"item_id": "p1"}), ev)) == {"u"}
    assert set(_eval1(did("page_view", where={"category": ["shoes", "bags"]}), ev)) == {"u", "v"}
    assert set(_eval1(did("page_view", where={"category": {"!=": "shoes"}}), ev)) == {"v"}  # missing never matches


def test_users_without_events_are_in_the_universe():
    ev = _events([("u", 0, "a")])
    feats = pd.DataFrame({"user_id": ["u", "ghost"], "x": [1.0, 2.0]})
    m = evaluate_segments([Segment("no_a", not_(did("a"))), Segment("x2", feature("x") >= 2)], events=ev, features=feats)
    assert set(_members(m, "no_a")) == {"ghost"}
    assert set(_members(m, "x2")) == {"ghost"}
    assert m.attrs["n_users"] == 2


def test_missing_feature_values_are_false_and_not_negates():
    ev = _events([("u", 0, "a")])
    feats = pd.DataFrame({"user_id": ["u", "v"], "x": [np.nan, 1.0]})
    m = evaluate_segments([Segment("gt", feature("x") > 0), Segment("ne", feature("x") != 5),
                           Segment("not_gt", ~(feature("x") > 0))], events=ev, features=feats)
    assert set(_members(m, "gt")) == {"v"}
    assert set(_members(m, "ne")) == {"v"}
    assert set(_members(m, "not_gt")) == {"u"}


def test_entered_at_combines_and_falls_back_to_as_of():
    ev = _events([("u", 0, "a"), ("u", 5, "b"), ("u", 9, "c")])
    feats = pd.DataFrame({"user_id": ["u"], "x": [1.0]})
    m = evaluate_segments([Segment("all", did("a") & did("b") & (feature("x") > 0)),
                           Segment("any", did("a") | did("b")), Segment("feat", feature("x") > 0)],
                          events=ev, features=feats)
    assert _members(m, "all") == {"u": _ts(5)}
    assert _members(m, "any") == {"u": _ts(0)}
    assert _members(m, "feat") == {"u": _ts(9)}  # as_of = last event


def test_percentile_thresholds_and_reason():
    feats = pd.DataFrame({"user_id": list("abcdefghij"), "t": np.arange(10, dtype=float)})
    ev = _events([("a", 0, "e")])
    m = evaluate_segments([Segment("top", feature("t").top_percent(20)), Segment("p", feature("t") >= percentile(50))],
                          events=ev, features=feats)
    assert set(_members(m, "top")) == {"i", "j"}  # t >= 7.2
    assert set(_members(m, "p")) == set("fghij")  # t >= 4.5
    assert m.loc[m["segment"] == "top", "reason"].iloc[0] == "t=8>=7.2 (top 20%)"


def test_reasons_quote_key_values():
    ev = _events([("u", 0, "add_to_cart"), ("u", 1, "cart_view"), ("u", 2, "cart_view"), ("u", 3, "cart_view")])
    feats = pd.DataFrame({"user_id": ["u"], "pages_per_session": [7.5], "avg_session_s": [1030.4]})
    cond = (feature("pages_per_session") >= 5) & (feature("avg_session_s") >= 900)
    m = evaluate_segments([Segment("e", cond), Segment("c", after("add_to_cart", count("cart_view") > 2, within="1h"))],
                          events=ev, features=feats)
    assert m["reason"].tolist() == ["pages_per_session=7.5>=5; avg_session_s=1030>=900",
                                    "add_to_cart then cart_view x3 within 1h"]


def test_membership_columns_sizes_and_attrs():
    ev = _events([("u", 0, "a"), ("v", 0, "b")])
    segs = [Segment("has_a", did("a")), Segment("has_c", did("c"))]
    m = evaluate_segments(segs, events=ev)
    assert list(m.columns) == ["user_id", "segment", "entered_at", "reason"]
    assert str(m["entered_at"].dtype).startswith("datetime64") and str(m["entered_at"].dt.tz) == "UTC"
    sizes = segment_sizes(m)
    assert sizes.values.tolist() == [["has_a", 1, 0.5], ["has_c", 0, 0.0]]
    assert m.attrs["hashes"]["has_a"] == definition_hash(segs[0])


def test_input_is_not_mutated():
    ev = _events([("u", 0, "a"), ("u", 1, "b")])
    feats = pd.DataFrame({"user_id": ["u"], "x": [1.0]})
    ev0, f0 = ev.copy(), feats.copy()
    evaluate_segments([Segment("s", then("a", "b") & (feature("x") > 0))], events=ev, features=feats)
    pd.testing.assert_frame_equal(ev, ev0)
    pd.testing.assert_frame_equal(feats, f0)


def test_accepts_parquet_and_ibis(tmp_path):
    import ibis

    ev = _events([("u", 0, "a"), ("u", 1, "b")])
    path = tmp_path / "ev.parquet"
    ev.to_parquet(path)
    seg = [Segment("s", then("a", "b"))]
    assert set(_members(evaluate_segments(seg, events=str(path)), "s")) == {"u"}
    assert set(_members(evaluate_segments(seg, events=ibis.memtable(ev)), "s")) == {"u"}


# --------------------------------------------------------------------------------------------
# Definitions: YAML, Python API, hashing
# --------------------------------------------------------------------------------------------


def test_yaml_and_python_definitions_agree():
    text = """
segments:
  abandoners:
    description: carts left alone
    after: add_to_cart
    within: 24h
    count:
      - {event: cart_view, ">": 2}
      - {event: purchase, "==": 0}
  engaged:
    all:
      - {feature: pages_per_session, ">=": 5}
      - {feature: total_time_s, ">=": {percentile: 90}}
      - not: {did: purchase}
"""
    a, e = parse_segments(yaml.safe_load(text))
    assert a == Segment("abandoners", after("add_to_cart", count("cart_view") > 2, count("purchase") == 0, within="24h"),
                        "carts left alone")
    assert e.condition == (feature("pages_per_session") >= 5) & (feature("total_time_s") >= percentile(90)) & ~did("purchase")


def test_nested_did_form_of_the_brief_is_accepted():
    nested = _parse({"did": {"event": "page_view", "where": {"page_type": "product"}, "at_least": 3, "within": "7d",
                             "window": "sliding"}})
    assert nested.condition == did("page_view", where={"page_type": "product"}, at_least=3, within="7d", window="sliding")


def test_not_followed_by_shorthand_equals_after_count_zero():
    text = "segments: {x: {did: add_to_cart, not_followed_by: purchase, within: 1d, which: last}}"
    seg = parse_segments(yaml.safe_load(text))[0]
    assert seg.condition == after("add_to_cart", count("purchase") == 0, within="24h", which="last")


def test_definition_hash_is_stable_and_ignores_presentation():
    a = Segment("a", feature("x") >= 5, "one")
    b = Segment("b", feature("x") >= 5.0, "two")
    c = Segment("c", feature("x") > 5)
    assert definition_hash(a) == definition_hash(b) != definition_hash(c)
    assert definition_hash(Segment("d", did(["b", "a"], within="24h"))) == definition_hash(Segment("e", did(["a", "b"], within="1d")))
    # pinned: the canonical JSON must not drift silently (bump the hash version if it must)
    assert definition_hash(a) == definition_hash(parse_segments({"segments": {"z": {"feature": "x", ">=": 5}}})[0])
    assert len(definition_hash(a)) == 64


def test_default_segments_load_validate_and_evaluate():
    from segkit.taxonomy import load_taxonomy

    segs = load_segments(ROOT / "parameters" / "segments" / "default.yaml")
    names = [s.name for s in segs]
    assert {"highly_engaged", "highly_engaged_top10", "high_engagement_weekly", "potential_high_value", "cart_abandoners",
            "viewed_carted_not_bought", "vip_cart_abandoners", "high_intent_searchers", "low_intent_searchers",
            "scrolled_not_converted"} <= set(names)
    tax = load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml")
    validate_segments(segs, taxonomy_events=tax)  # against the feature registry
    ev = _events([("u", 0, "search"), ("u", 1, "page_view", "p1"), ("u", 2, "add_to_cart", "p1"),
                  ("v", 0, "search"), ("v", 1, "wishlist_add", "p2")])
    ev["page_type"] = pd.Series([None, "product", None, None, None], dtype="string")
    feats = pd.DataFrame({"user_id": ["u", "v"], **{f: [1.0, 2.0] for f in (
        "pages_per_session", "total_time_s", "distinct_content_types", "avg_session_s", "abandoned_carts",
        "cart_abandonment", "lifetime_value", "purchases")}, "is_vip": [True, False]})
    m = evaluate_segments(segs, events=ev, features=feats, taxonomy_events=tax)
    assert set(_members(m, "high_intent_searchers")) == {"u"}
    assert set(_members(m, "low_intent_searchers")) == {"v"}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _parse(body) -> Segment:
    return parse_segments({"segments": {"s": body}})[0]


@pytest.mark.parametrize("body, path, match", [
    ({"feature": "x", "between": [5, 3]}, "segments.s.between", "inverted"),
    ({"all": [{"feature": "x", ">": 1}, {"feature": "x", "between": [5, 3]}]}, "segments.s.all[1].between", "inverted"),
    ({"all": [{"feature": "x", ">=": 10}, {"feature": "x", "<=": 5}]}, "segments.s.all[1]", "contradicts all"),
    ({"all": [{"feature": "x", ">": 5}, {"feature": "x", "==": 5}]}, "segments.s.all[1]", "contradicts all"),
    ({"feature": "x", "between": [{"percentile": 90}, {"percentile": 10}]}, "segments.s.between", "inverted"),
    ({"feature": "x", ">=": {"percentile": 120}}, "segments.s.>=.percentile", "0 to 100"),
    ({"feature": "x", ">=": {"percentil": 90}}, "segments.s.>=.percentil", "did you mean 'percentile'"),
    ({"feature": "x", "==": {"percentile": 50}}, "segments.s.==", "equality with a percentile"),
    ({"feature": "x", ">=": "high"}, "segments.s.>=", "needs a number"),
    ({"feature": "x", "top_percent": 0}, "segments.s.top_percent", r"\(0, 100\]"),
    ({"feature": "x", "in": []}, "segments.s.in", "non-empty"),
    ({"feature": "x", ">": 1, "<": 3}, "segments.s", "exactly one operator"),
    ({"feature": "x", "betwen": [1, 2]}, "segments.s.betwen", "did you mean 'between'"),
    ({"feature": "x"}, "segments.s", "exactly one operator"),
    ({"all": []}, "segments.s.all", "non-empty list"),
    ({"al": [{"did": "a"}]}, "segments.s.al", "did you mean 'all'"),
    ({"did": "a", "then": ["a", "b"]}, "segments.s", "mixes"),
    ({"did": "a", "within": "0h"}, "segments.s.within", "positive duration"),
    ({"did": "a", "within": "-2h"}, "segments.s.within", "positive duration"),
    ({"did": "a", "within": 3600}, "segments.s.within", "bare number"),
    ({"did": "a", "window": "sliding"}, "segments.s.window", "needs 'within'"),
    ({"did": "a", "within": "1h", "window": "slide"}, "segments.s.window", "did you mean 'sliding'"),
    ({"did": "a", "at_least": 0}, "segments.s.at_least", ">= 1"),
    ({"did": "a", "at_least": True}, "segments.s.at_least", ">= 1"),
    ({"did": "a", "scope": "same_session"}, "segments.s.scope", "belongs to"),
    ({"did": "a", "not_followed_by": "b", "at_least": 2}, "segments.s.at_least", "belongs to the frequency"),
    ({"did": {"event": "a", "within": "1h"}, "within": "2h"}, "segments.s.within", "both inside and beside"),
    ({"did": {"evnt": "a"}}, "segments.s.did.evnt", "did you mean 'event'"),
    ({"did": {"event": "a", "where": {"price": {">": "cheap"}}}}, "segments.s.did.where.price.>", "compares numbers"),
    ({"did": {"event": "a", "where": {"price": {"~": 1}}}}, "segments.s.did.where.price", "allowed"),
    ({"did": {"event": "a", "where": {"price": None}}}, "segments.s.did.where.price", "null"),
    ({"did": {"event": SESSION_START, "where": {"item_id": "p"}}}, "segments.s.did.where", "virtual"),
    ({"then": ["a"]}, "segments.s.then", "at least two steps"),
    ({"then": [{"event": "a", "within": "1h"}, "b"]}, "segments.s.then[0].within", "first step"),
    ({"then": ["a", {"event": "b", "within": "0m"}]}, "segments.s.then[1].within", "positive duration"),
    ({"then": ["a", "b"], "mode": "direct"}, "segments.s.mode", "did you mean 'directly'"),
    ({"then": ["a", "b"], "scope": "session"}, "segments.s.scope", "allowed"),
    ({"then": [SESSION_START, "b"], "mode": "directly"}, "segments.s.then[0]", "virtual"),
    ({"then": [SESSION_START, "b"], "same": ["item_id"]}, "segments.s.then[0]", "no properties"),
    ({"after": "a", "count": {"event": "b", "!=": 1}}, "segments.s.count.op", "not a count operator"),
    ({"after": "a", "count": {"event": "b", ">=": 0}}, "segments.s.count.>=", "always holds"),
    ({"after": "a", "count": {"event": "b", "<": 0}}, "segments.s.count.<", "never holds"),
    ({"after": "a", "count": {"event": "b", "between": [3, 1]}}, "segments.s.count.between", "inverted"),
    ({"after": "a", "count": {"event": "b", ">": -1}}, "segments.s.count.>", "whole number"),
    ({"after": "a", "count": [{"event": "b", ">": 2}, {"event": "b", "<": 2}]}, "segments.s.count[1]", "contradicts count"),
    ({"after": "a"}, "segments.s.count", "needs 'count'"),
    ({"after": "a", "count": {"event": "b", ">": 1}, "which": "first"}, "segments.s.which", "allowed"),
    ({"not": "x"}, "segments.s.not", "a condition is a mapping"),
])
def test_definition_errors_name_the_path(body, path, match):
    with pytest.raises(ParameterError, match=match) as info:
        _parse(body)
    assert info.value.name == path


def test_file_level_errors(tmp_path):
    with pytest.raises(ParameterError, match="not found"):
        load_segments(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments: [1, 2")
    with pytest.raises(ParameterError, match="not valid YAML"):
        load_segments(bad)
    with pytest.raises(ParameterError, match="did you mean 'segments'"):
        parse_segments({"segmnts": {}})
    with pytest.raises(ParameterError, match="must map segment names"):
        parse_segments({"segments": []})
    with pytest.raises(ParameterError, match="segment name"):
        parse_segments({"segments": {"a b": {"did": "x"}}})
    with pytest.raises(ParameterError, match="segments.s.description"):
        parse_segments({"segments": {"s": {"did": "x", "description": 3}}})


def test_python_builder_errors():
    with pytest.raises(ParameterError, match="inverted"):
        feature("x").between(5, 3)
    with pytest.raises(ParameterError, match="contradicts all"):
        (feature("x") >= 10) & (feature("x") <= 5)
    with pytest.raises(ParameterError, match="positive duration"):
        did("a", within="0s")
    with pytest.raises(ParameterError, match="not a count operator"):
        count("a") != 1  # noqa: B015
    with pytest.raises(ParameterError, match="segment name"):
        Segment("no spaces", did("a"))
    with pytest.raises(ParameterError, match="not a condition"):
        all_of(did("a"), "b")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="where"):
        did(step("a"), where={"x": 1})
    with pytest.raises(ParameterError, match="defined twice"):
        evaluate_segments([Segment("s", did("a")), Segment("s", did("b"))], events=_events([("u", 0, "a")]))


def test_unknown_feature_event_and_column_get_did_you_mean():
    ev = _events([("u", 0, "page_view")])
    feats = pd.DataFrame({"user_id": ["u"], "pages_per_session": [1.0]})
    with pytest.raises(ParameterError, match="did you mean 'pages_per_session'") as info:
        evaluate_segments([Segment("s", any_of(did("a"), feature("pages_per_sesion") > 1))], events=ev, features=feats)
    assert info.value.name == "segments.s.any[1].feature"
    with pytest.raises(ParameterError, match="did you mean 'page_view'") as info:
        evaluate_segments([Segment("s", then("page_view", "pageview"))], events=ev, taxonomy_events=["page_view", "search"])
    assert info.value.name == "segments.s.then[1].event"
    with pytest.raises(ParameterError, match="did you mean 'item_id'") as info:
        evaluate_segments([Segment("s", did("page_view", where={"itemid": "p"}))], events=ev)
    assert info.value.name == "segments.s.did.where.itemid"
    with pytest.raises(ParameterError, match="key column"):
        evaluate_segments([Segment("s", then("a", "b", same="user_id"))], events=ev)
    with pytest.raises(ParameterError, match="CRM table"):
        validate_segments([Segment("s", feature("is_vip") == True)], features=["user_id"])  # noqa: E712


def test_type_mismatches_are_errors():
    ev = _events([("u", 0, "a", "p1", "x", 1.0)])
    feats = pd.DataFrame({"user_id": ["u"], "label": ["m"], "x": [1.0], "flag": [True]})
    with pytest.raises(ParameterError, match="holds text values") as info:
        evaluate_segments([Segment("s", feature("label").top_percent(10))], events=ev, features=feats)
    assert info.value.name == "segments.s.top_percent"
    with pytest.raises(ParameterError, match="cannot be compared with a text value"):
        evaluate_segments([Segment("s", feature("x") == "high")], events=ev, features=feats)
    with pytest.raises(ParameterError, match="cannot be compared with a number"):
        evaluate_segments([Segment("s", feature("flag") == 1)], events=ev, features=feats)
    with pytest.raises(ParameterError, match="column 'price' holds number values"):
        evaluate_segments([Segment("s", did("a", where={"price": "cheap"}))], events=ev)


def test_data_errors():
    ev = _events([("u", 0, "a")], sessions=False)
    with pytest.raises(SchemaError, match="split_sessions"):
        evaluate_segments([Segment("s", then("a", "b", scope="same_session"))], events=ev)
    with pytest.raises(SchemaError, match="split_sessions"):
        evaluate_segments([Segment("s", did(SESSION_START))], events=ev)
    with pytest.raises(SchemaError, match="Column 'user_id' not found"):
        evaluate_segments([Segment("s", did("a"))], events=ev.rename(columns={"user_id": "user"}))
    with pytest.raises(ParameterError, match="pass the user feature table"):
        evaluate_segments([Segment("s", feature("x") > 1)], events=ev)
    feats = pd.DataFrame({"user_id": ["u", "u"], "x": [1.0, 2.0]})
    with pytest.raises(SchemaError, match="must be unique"):
        evaluate_segments([Segment("s", feature("x") > 1)], events=ev, features=feats)
    with pytest.raises(ParameterError, match="as_of"):
        evaluate_segments([Segment("s", did("a"))], events=ev, as_of="yesterday-ish")
    with pytest.raises(SchemaError, match="must hold timestamps"):
        evaluate_segments([Segment("s", did("a"))], events=ev.assign(timestamp="2024-01-01"))
    with pytest.raises(ParameterError, match="not a Segment"):
        evaluate_segments(["s"], events=ev)


@settings(max_examples=max(2, N_EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=event_logs(max_rows=20), data=st.data())
def test_string_keys_and_computed_inputs_give_the_same_result(ev, data):
    """Hash keys vs string keys (the fallback on a hash collision), plain vs computed input."""
    import ibis

    import segkit.segments as segments_module

    conds = [data.draw(then_conditions()), data.draw(after_conditions()), data.draw(did_conditions())]
    segs = [Segment(f"s{i}", c) for i, c in enumerate(conds)]
    want = evaluate_segments(segs, events=ev)
    computed = ibis.memtable(ev).mutate(extra=ibis.literal(1))  # not a plain scan: materialized first
    pd.testing.assert_frame_equal(evaluate_segments(segs, events=computed), want)
    old = segments_module._HASH_KEYS
    segments_module._HASH_KEYS = False
    try:
        pd.testing.assert_frame_equal(evaluate_segments(segs, events=ev), want)
    finally:
        segments_module._HASH_KEYS = old


def test_describe_segments_lists_definitions_in_words_with_their_hash():
    from segkit.segments import describe_segments

    defs = [Segment("carts", did("add_to_cart", at_least=2)), Segment("fans", feature("n_sessions") >= 3, description="regulars")]
    d = describe_segments(defs)
    assert d["segment"].tolist() == ["carts", "fans"]
    assert d["definition"].tolist() == ["add_to_cart x>=2", "n_sessions>=3"]
    assert d["description"].tolist() == ["", "regulars"]
    assert d["definition_hash"].tolist() == [definition_hash(s) for s in defs]
