"""Run artifacts: the only way notebooks pass data to each other.

Each artifact has a registered name, the notebook that produces it and a kind (``table`` stored as
Parquet, ``json`` stored as JSON). Loading an artifact that is missing raises
:class:`~segkit.errors.ArtifactError` naming the notebook to run first.

Examples
--------
>>> import pandas as pd, tempfile
>>> run = tempfile.mkdtemp()
>>> _ = save_artifact(run, "events", pd.DataFrame({"user_id": ["u1"]}))
>>> load_artifact(run, "events")["user_id"].tolist()
['u1']
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .errors import ArtifactError, did_you_mean, format_allowed

__all__ = ["ARTIFACTS", "ArtifactSpec", "save_artifact", "load_artifact", "artifact_path", "list_artifacts"]


@dataclass(frozen=True)
class ArtifactSpec:
    """What an artifact is and which notebook writes it."""

    name: str
    notebook: str
    kind: Literal["table", "json"]
    description: str


_SPECS = [
    ArtifactSpec("raw_events", "01_event_taxonomy", "table", "events as read, canonical columns, raw event names"),
    ArtifactSpec("read_rejected", "01_event_taxonomy", "table", "input rows the reader could not use, with reasons"),
    ArtifactSpec("events", "01_event_taxonomy", "table", "events with canonical names and categories (taxonomy applied)"),
    ArtifactSpec("crm", "01_event_taxonomy", "table", "CRM attributes per customer"),
    ArtifactSpec("truth", "01_event_taxonomy", "table", "planted truth per visitor (simulated shop only)"),
    ArtifactSpec("data_fingerprint", "01_event_taxonomy", "json", "content hash and row count of the input"),
    ArtifactSpec("clean_events", "02_cleaning", "table", "cleaned, deduplicated, bot-free events"),
    ArtifactSpec("quarantine", "02_cleaning", "table", "every dropped row with the step and reason"),
    ArtifactSpec("ledger", "02_cleaning", "table", "rows dropped or changed per cleaning step and reason"),
    ArtifactSpec("bots", "02_cleaning", "table", "flagged visitors with reasons and scores"),
    ArtifactSpec("sessions", "02_cleaning", "table", "one row per session with session features"),
    ArtifactSpec("user_features", "02_cleaning", "table", "one row per user with behavioral features"),
    ArtifactSpec("feature_percentiles", "02_cleaning", "table", "percentiles of the main features"),
    ArtifactSpec("segment_membership", "03_threshold_segments", "table", "user_id, segment, entered_at, reason"),
    ArtifactSpec("patterns", "04_sequence_mining", "table", "frequent sequential patterns with support"),
    ArtifactSpec("markov", "04_sequence_mining", "json", "Markov transition matrix and conversion probabilities"),
    ArtifactSpec("clusters", "05_clustering", "table", "user_id, cluster, cluster name"),
    ArtifactSpec("intent_scores", "06_intent_models", "table", "user_id, score, tier"),
    ArtifactSpec("intent_segments", "06_intent_models", "table", "intent tiers as a membership table"),
    ArtifactSpec("intent_metrics", "06_intent_models", "json", "model, ROC-AUC, PR-AUC, base rate, top-decile lift"),
    ArtifactSpec("behavior_states", "07_behavior_states", "table", "user_id, dominant state, occupancy"),
    ArtifactSpec("activation", "08_activation_and_monitoring", "table", "one personalization action per user"),
    ArtifactSpec("alerts", "08_activation_and_monitoring", "table", "monitoring alerts and pitfall warnings"),
    ArtifactSpec("segment_changes", "08_activation_and_monitoring", "table", "per segment: entered, left, stayed since the previous run"),
]
ARTIFACTS: dict[str, ArtifactSpec] = {s.name: s for s in _SPECS}


def _spec(name: str) -> ArtifactSpec:
    if name not in ARTIFACTS:
        raise ArtifactError(
            f"Unknown artifact {name!r};{did_you_mean(name, ARTIFACTS)} known: {format_allowed(list(ARTIFACTS))}"
        )
    return ARTIFACTS[name]


def artifact_path(run_dir: str | Path, name: str) -> Path:
    """Where artifact ``name`` lives in ``run_dir``."""
    spec = _spec(name)
    return Path(run_dir) / (f"{name}.parquet" if spec.kind == "table" else f"{name}.json")


def _json_safe(value: Any) -> Any:
    """``value`` with timestamps as ISO strings, numpy scalars as Python ones and other objects as
    their ``repr`` (pandas writes ``attrs`` as JSON into the Parquet metadata)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)  # anything else (a parsed mapping, a model) is kept as its description


def save_artifact(run_dir: str | Path, name: str, obj: pd.DataFrame | dict[str, Any]) -> Path:
    """Write an artifact atomically (temporary file, then rename) and return its path."""
    spec = _spec(name)
    path = artifact_path(run_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if spec.kind == "table":
        if not isinstance(obj, pd.DataFrame):
            raise ArtifactError(f"Artifact {name!r} is a table; got {type(obj).__name__}, expected a pandas DataFrame")
        frame = obj.copy(deep=False)
        frame.attrs = _json_safe(obj.attrs)  # pandas stores attrs as JSON in the Parquet metadata
        frame.to_parquet(tmp, index=False)
    else:
        if not isinstance(obj, dict):
            raise ArtifactError(f"Artifact {name!r} is JSON; got {type(obj).__name__}, expected a dict")
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def load_artifact(run_dir: str | Path, name: str, *, optional: bool = False) -> Any:
    """Read an artifact; a missing one names the notebook that produces it.

    ``optional=True`` returns ``None`` for a missing artifact instead (for example ``truth``,
    which only the simulated shop has).
    """
    spec = _spec(name)
    path = artifact_path(run_dir, name)
    if not path.exists() and optional:
        return None
    if not path.exists():
        raise ArtifactError(
            f"Artifact {name!r} not found in {str(run_dir)!r}: it is written by notebook "
            f"{spec.notebook}.ipynb; run that notebook first (or `make report`)"
        )
    if spec.kind == "table":
        return pd.read_parquet(path)
    return json.loads(path.read_text())


def list_artifacts(run_dir: str | Path) -> pd.DataFrame:
    """Registered artifacts with the producing notebook and whether each exists in ``run_dir``."""
    rows = []
    for spec in _SPECS:
        path = artifact_path(run_dir, spec.name)
        rows.append(
            {
                "artifact": spec.name,
                "notebook": spec.notebook,
                "kind": spec.kind,
                "exists": path.exists(),
                "description": spec.description,
            }
        )
    return pd.DataFrame(rows)
