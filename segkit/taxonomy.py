"""The event taxonomy: raw tracker names -> canonical granular events, and the tracking plan.

A taxonomy YAML lists each canonical event with its category (``interaction``, ``intent``,
``engagement``, ``transaction``), the raw names (aliases) a tracker may send for it, and the
properties (canonical columns) it must carry. Applying it never drops a row: names it does not
know keep their raw name and get the category ``unknown``, so they can be listed and fixed.

Examples
--------
>>> import pandas as pd
>>> tax = Taxonomy.model_validate({"events": {"add_to_cart": {"category": "intent", "aliases": ["AddToCart"]}}})
>>> ev = pd.DataFrame({"event": ["AddToCart", "gtm.load"]})
>>> apply_taxonomy(ev, tax)[["event", "raw_event", "event_category"]].values.tolist()
[['add_to_cart', 'AddToCart', 'intent'], ['gtm.load', 'gtm.load', 'unknown']]
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ParameterError, check_columns, did_you_mean, format_allowed
from .schema import CANONICAL_COLUMNS

__all__ = [
    "CATEGORIES",
    "EventSpec",
    "Taxonomy",
    "load_taxonomy",
    "apply_taxonomy",
    "event_catalog",
    "unknown_events",
    "check_tracking_plan",
    "taxonomy_summary",
]

CATEGORIES: tuple[str, ...] = ("interaction", "intent", "engagement", "transaction")
UNKNOWN = "unknown"


class EventSpec(BaseModel):
    """One canonical event of the taxonomy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    category: Literal["interaction", "intent", "engagement", "transaction"]
    description: str = ""
    aliases: tuple[str, ...] = ()
    requires: tuple[str, ...] = Field((), description="canonical columns the event must carry (non-null)")

    @model_validator(mode="after")
    def _known_columns(self) -> EventSpec:
        for col in self.requires:
            if col not in CANONICAL_COLUMNS:
                raise ValueError(f"requires {col!r}, not a canonical column;{did_you_mean(col, CANONICAL_COLUMNS)}")
        return self


class Taxonomy(BaseModel):
    """Canonical events keyed by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    events: dict[str, EventSpec]

    @model_validator(mode="after")
    def _unique_aliases(self) -> Taxonomy:
        owner: dict[str, str] = {}
        for name, spec in self.events.items():
            for raw in (name, *spec.aliases):
                if raw in owner and owner[raw] != name:
                    raise ValueError(f"raw name {raw!r} maps to both {owner[raw]!r} and {name!r}")
                owner[raw] = name
        return self

    def raw_to_canonical(self) -> dict[str, str]:
        """Every known raw name (canonical names included) -> canonical name."""
        out: dict[str, str] = {}
        for name, spec in self.events.items():
            out[name] = name
            out.update({a: name for a in spec.aliases})
        return out

    def category_of(self) -> dict[str, str]:
        """Canonical name -> category."""
        return {name: spec.category for name, spec in self.events.items()}

    def tracking_plan(self) -> pd.DataFrame:
        """The taxonomy as a tracking-plan table: event, category, required properties, aliases."""
        rows = [
            {
                "event": name,
                "category": spec.category,
                "requires": ", ".join(spec.requires),
                "aliases": ", ".join(spec.aliases),
                "description": spec.description,
            }
            for name, spec in self.events.items()
        ]
        return pd.DataFrame(rows).sort_values(["category", "event"], ignore_index=True)


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Load and validate a taxonomy YAML; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError("taxonomy", str(path), message=f"Taxonomy file {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return Taxonomy.model_validate(data)
    except yaml.YAMLError as exc:
        raise ParameterError("taxonomy", str(path), message=f"Taxonomy {str(path)!r} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error":
            msg += f" (allowed categories: {format_allowed(CATEGORIES)})"
        raise ParameterError(
            f"taxonomy.{where}", err.get("input"), message=f"Taxonomy {str(path)!r}: {where}: {msg}; got {err.get('input')!r}"
        ) from None


def apply_taxonomy(events: pd.DataFrame, taxonomy: Taxonomy, *, event_col: str = "event") -> pd.DataFrame:
    """Map raw event names to canonical ones; add ``raw_event`` and ``event_category``.

    Returns a new frame with every input row; unknown names keep their raw name and get the
    category ``"unknown"``.
    """
    check_columns(events.columns, [event_col], what="events")
    out = events.copy()
    raw = out[event_col].astype("string")
    mapping = taxonomy.raw_to_canonical()
    canonical = raw.map(mapping)
    out[event_col] = canonical.fillna(raw).astype("string")
    out["raw_event"] = raw
    out["event_category"] = out[event_col].map(taxonomy.category_of()).fillna(UNKNOWN).astype("string")
    return out


def event_catalog(events: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Counts per canonical event: category, raw names seen, events, users and share of all events."""
    check_columns(events.columns, ["event", "raw_event", "event_category", "user_id"], what="events (apply_taxonomy first)")
    g = events.groupby("event", observed=True)
    cat = g["event_category"].first()
    raws = g["raw_event"].agg(lambda s: ", ".join(sorted(map(str, s.unique()))))
    out = pd.DataFrame(
        {
            "category": cat,
            "raw_names": raws,
            "events": g.size(),
            "users": g["user_id"].nunique(),
        }
    )
    out["share"] = out["events"] / len(events) if len(events) else 0.0
    in_tax = pd.Series(list(taxonomy.events), dtype="string")
    missing = [e for e in in_tax if e not in out.index]
    if missing:
        extra = pd.DataFrame(
            {"category": [taxonomy.events[e].category for e in missing], "raw_names": "", "events": 0, "users": 0, "share": 0.0},
            index=pd.Index(missing, name="event"),
        )
        out = pd.concat([out, extra])
    out.index.name = "event"
    return out.sort_values(["category", "events"], ascending=[True, False]).reset_index()


def unknown_events(events: pd.DataFrame) -> pd.DataFrame:
    """Raw names the taxonomy does not know, with event and user counts (never dropped)."""
    check_columns(events.columns, ["raw_event", "event_category", "user_id"], what="events (apply_taxonomy first)")
    unk = events[events["event_category"] == UNKNOWN]
    g = unk.groupby("raw_event", observed=True)
    out = pd.DataFrame({"events": g.size(), "users": g["user_id"].nunique()}).sort_values("events", ascending=False)
    return out.reset_index()


def check_tracking_plan(events: pd.DataFrame, taxonomy: Taxonomy, *, examples: int = 3) -> pd.DataFrame:
    """Events that break the tracking plan: a required property missing (or the column absent).

    Returns one row per (event, property) with ``violations``, ``events`` and ``share`` and a few
    example row indices; an empty frame means every event carries what the plan requires.
    """
    check_columns(events.columns, ["event"], what="events")
    rows = []
    counts = events["event"].value_counts()
    for name, spec in taxonomy.events.items():
        n = int(counts.get(name, 0))
        if not n or not spec.requires:
            continue
        mask_event = events["event"] == name
        for col in spec.requires:
            if col not in events.columns:
                bad = mask_event
            else:
                values = events[col]
                empty = values.isna()
                if pd.api.types.is_string_dtype(values) or values.dtype == object:
                    empty = empty | (values.astype("string").str.strip() == "").fillna(False)
                bad = mask_event & empty
            nbad = int(bad.sum())
            if nbad:
                rows.append(
                    {
                        "event": name,
                        "property": col,
                        "violations": nbad,
                        "events": n,
                        "share": nbad / n,
                        "example_rows": events.index[bad][:examples].tolist(),
                    }
                )
    cols = ["event", "property", "violations", "events", "share", "example_rows"]
    return pd.DataFrame(rows, columns=cols).sort_values("violations", ascending=False, ignore_index=True)



def taxonomy_summary(events: pd.DataFrame, violations: pd.DataFrame | None = None) -> dict[str, object]:
    """Rounded headline numbers of a taxonomy run (for reports and regression checks)."""
    check_columns(events.columns, ["event", "event_category", "user_id"], what="events (apply_taxonomy first)")
    share = events["event_category"].value_counts(normalize=True)
    out: dict[str, object] = {
        "events": int(len(events)),
        "users": int(events["user_id"].nunique()),
        "canonical_events": int(events.loc[events["event_category"] != UNKNOWN, "event"].nunique()),
        "unknown_share": round(float(share.get(UNKNOWN, 0.0)), 3),
        "category_share": {k: round(float(v), 3) for k, v in share.sort_index().items()},
    }
    if violations is not None:
        out["plan_violations"] = int(violations["violations"].sum()) if len(violations) else 0
    return out
