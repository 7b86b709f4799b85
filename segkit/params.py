"""Named parameter sets: typed, frozen, validated before anything runs.

A parameter set is a YAML file in ``parameters/``. It loads into :class:`Params`, a frozen pydantic
model with one section per concern. Unknown keys fail with a did-you-mean hint, wrong types name
the key, the value and the expected type, and durations need units (``"30m"``).

Notebooks see parameters *flattened*: section and key joined by ``_`` (``simulate_n_users``,
``sessions_timeout``), each a literal that papermill can inject into a ``parameters`` cell. The
notebook's validation cell rebuilds the model with :func:`params_from_namespace`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ParameterError, did_you_mean, format_allowed

__all__ = [
    "Params",
    "DataParams",
    "EngineParams",
    "SimulateParams",
    "CleaningParams",
    "SessionParams",
    "ReportParams",
    "load_params",
    "params_from_namespace",
    "parse_duration",
    "validate_parameter_dir",
    "PARAMETERS_DIR",
]

PARAMETERS_DIR = Path("parameters")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT = {"ms": "ms", "s": "s", "sec": "s", "m": "min", "min": "min", "h": "h", "d": "D", "w": "W"}


def parse_duration(value: Any, *, name: str = "duration") -> pd.Timedelta:
    """Parse a duration with units (``"30m"``, ``"24h"``, ``"7d"``, ``"90s"``) or a Timedelta.

    A bare number is rejected, because ``pd.Timedelta("1800")`` means nanoseconds.

    Examples
    --------
    >>> parse_duration("30m")
    Timedelta('0 days 00:30:00')
    """
    if isinstance(value, pd.Timedelta):
        td = value
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        td = pd.Timedelta(float(m.group(1)), unit=_UNIT[m.group(2).lower()]) if m.group(2).lower() != "w" else pd.Timedelta(
            days=7 * float(m.group(1))
        )
    else:
        raise ParameterError(
            name,
            value,
            message=f"Parameter {name!r} got {value!r}; a duration needs units, "
            "e.g. '90s', '30m', '24h', '7d', '2w' (a bare number is ambiguous)",
        )
    if td <= pd.Timedelta(0):
        raise ParameterError(name, value, message=f"Parameter {name!r} got {value!r}; a duration must be positive")
    return td


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _duration_field(v: Any, info: Any) -> str:
    parse_duration(v, name=info.field_name)
    return v if isinstance(v, str) else f"{pd.Timedelta(v).total_seconds():g}s"


class SimulateParams(_Section):
    """Settings of the built-in simulated shop (used when ``data.source`` is ``simulate``)."""

    n_users: int = Field(12000, ge=50, description="number of simulated visitors (humans and bots)")
    n_days: int = Field(56, ge=1, le=366, description="days of traffic")
    start: str = Field("2024-01-01", description="first day of traffic (ISO date)")
    bot_share: float = Field(0.05, ge=0, le=0.5, description="share of visitors that are bots")
    timezone: str = Field("Europe/Berlin", description="time zone of naive timestamps in the export")
    dirt: bool = Field(True, description="plant dirty timestamps, labels, missing fields, duplicates")

    @field_validator("start")
    @classmethod
    def _check_start(cls, v: str) -> str:
        try:
            pd.Timestamp(v)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not an ISO date: {v!r}") from exc
        return v


class DataParams(_Section):
    """Where the events come from: the simulator, or a user's own file."""

    source: Literal["simulate", "file"] = Field("simulate", description="simulated shop or a file")
    path: str | None = Field(None, description="events file (source: file); relative to the repository")
    format: Literal["csv", "parquet", "jsonl", "rees46", "otto", "access_log", "yoochoose", "diginetica"] | None = Field(
        None, description="file format; inferred from the suffix when unset"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="source column -> canonical column")
    timezone: str = Field("UTC", description="time zone of naive timestamps in the file")
    crm_path: str | None = Field(None, description="optional CRM table (customer_id, lifetime_value, is_vip)")

    @model_validator(mode="after")
    def _one_mode(self) -> DataParams:
        if self.source == "file" and not self.path:
            raise ValueError("data.source is 'file' but data.path is not set")
        if self.source == "simulate":
            for key in ("path", "format", "crm_path"):
                if getattr(self, key) is not None:
                    raise ValueError(f"data.{key} is set but data.source is 'simulate'; set source: file to use it")
            if self.columns:
                raise ValueError("data.columns is set but data.source is 'simulate'; set source: file to use it")
        return self


class CleaningParams(_Section):
    """Cleaning (notebook 02): unknown events, bots, duplicates, standardization, missing data."""

    drop_unknown_events: bool = Field(True, description="drop events the taxonomy does not know (counted in the ledger)")
    bot_ip_list: list[str] = Field(default_factory=list, description="IPs that are always bots")
    bot_ip_ranges: list[str] = Field(default_factory=list, description="CIDR ranges that are always bots")
    bot_ua_patterns: list[str] = Field(default_factory=list, description="extra user-agent regexes that mark bots")
    bot_max_events_per_minute: float | None = Field(60.0, gt=0, description="faster than this is machine-like (strong)")
    bot_min_gap_cv: float | None = Field(0.35, ge=0, description="gap coefficient of variation below this is machine timing (strong)")
    bot_max_session: str | None = Field("4h", description="a session longer than this is suspicious (weak)")
    bot_min_engagement_share: float | None = Field(0.05, ge=0, le=1, description="share of scroll/engagement events below this (weak)")
    bot_max_ua_per_ip: int | None = Field(20, ge=1, description="more user agents on one IP than this (weak)")
    bot_min_events_for_timing: int = Field(20, ge=2, description="events a visitor needs before timing rules apply")
    bot_drop_one_hit: bool = Field(False, description="treat single-event visitors as bots")
    dedup_tolerance: str | None = Field("1s", description="near duplicates: same row within this time; null = exact only")
    url_keep_params: list[str] = Field(default_factory=lambda: ["q", "utm_source", "utm_medium", "utm_campaign"],
                                       description="query parameters kept when URLs are normalized")
    url_keep_host: bool = Field(True, description="keep scheme and host in normalized URLs")
    page_type_rules: list[tuple[str, str]] = Field(
        default_factory=lambda: [
            ("home", r"^/$"),
            ("category", r"^/category(/|$)"),
            ("product", r"^/product(/|$)"),
            ("cart", r"^/cart(/|$)"),
            ("checkout", r"^/checkout(/|$)"),
            ("blog", r"^/blog(/|$)"),
            ("search", r"^/search(/|$)"),
        ],
        description="ordered (page_type, regex on the URL path) rules; the first match wins",
    )
    device_labels: dict[str, str] = Field(default_factory=dict, description="extra raw device label -> Mobile/Desktop/Tablet/Bot/Other")
    missing: dict[str, Any] = Field(
        default_factory=lambda: {"referrer": {"fill": "(direct)"}},
        description="column -> policy: drop, mode, median, mean, {fill: value} or {model: {features: [...]}}",
    )

    @field_validator("bot_max_session", "dedup_tolerance")
    @classmethod
    def _durations(cls, v: str | None, info: Any) -> str | None:
        if v is not None:
            parse_duration(v, name=info.field_name)
        return v


class SessionParams(_Section):
    """Sessionization (notebook 02)."""

    timeout: str = Field("30m", description="inactivity gap that ends a session")
    split_at_midnight: bool = Field(False, description="also start a session at local midnight")
    timezone: str = Field("UTC", description="time zone of the midnight split")
    split_on_referrer_change: bool = Field(False, description="also start a session when the campaign/referrer changes")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        parse_duration(v, name="timeout")
        return v

    @model_validator(mode="after")
    def _mode(self) -> SessionParams:
        if self.timezone != "UTC" and not self.split_at_midnight:
            raise ValueError("sessions.timezone is set but split_at_midnight is false; set split_at_midnight: true to use it")
        return self


class SegmentParams(_Section):
    """Rule segments and funnels (notebook 03)."""

    definitions: str = Field("parameters/segments/default.yaml", description="YAML file of segment definitions")
    as_of: str | None = Field(None, description="reference time of the segments (default: the last event)")
    funnel_steps: list[Any] = Field(
        default_factory=lambda: [
            "page_view",
            {"event": "page_view", "where": {"page_type": "product"}},
            "add_to_cart",
            "checkout_start",
            "purchase",
        ],
        description="funnel steps: event names or {event, where} steps",
    )
    funnel_within: str = Field("7d", description="conversion window from the first step")
    funnel_order: Literal["sequential", "strict", "any"] = Field("sequential", description="step order rule")
    funnel_breakdown: str | None = Field("device", description="column the funnel is broken down by")
    export_formats: list[Literal["csv", "parquet", "jsonl"]] = Field(
        default_factory=lambda: ["csv", "parquet", "jsonl"], description="membership export formats for activation"
    )

    @field_validator("funnel_within")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_duration(v, name="funnel_within")
        return v

    @field_validator("funnel_steps")
    @classmethod
    def _steps(cls, v: list[Any]) -> list[Any]:
        if len(v) < 2:
            raise ValueError(f"a funnel needs at least 2 steps, got {len(v)}")
        for i, step in enumerate(v):
            if not (isinstance(step, str) or (isinstance(step, dict) and "event" in step)):
                raise ValueError(f"funnel_steps[{i}] = {step!r} is neither an event name nor a mapping with 'event'")
        return v


class SequenceParams(_Section):
    """Sequence mining and Markov chains (notebook 04)."""

    by: Literal["session", "user"] = Field("session", description="one sequence per session or per user")
    item: str = Field("flow", description="item granularity: flow, event, page_type, event+category or a column")
    collapse_repeats: bool = Field(True, description="merge consecutive repeats of the same item")
    max_gap: str | None = Field(None, description="split a sequence where consecutive items are further apart")
    min_support: float = Field(0.01, gt=0, le=1, description="minimum support, as a share of sequences")
    max_len: int | None = Field(8, ge=1, description="longest pattern mined (None: unbounded)")
    top: int = Field(15, ge=1, description="patterns shown per table")
    target_event: str = Field("purchase", description="conversion event of the cohorts and the absorbing-chain analysis")
    contrast_drop: list[str] = Field(
        default_factory=lambda: ["purchase", "checkout_start", "checkout"],
        description="items removed before contrasting cohorts (those that define the cohorts)",
    )
    markov_orders: list[int] = Field(default_factory=lambda: [1, 2, 3], description="Markov orders compared")
    engine: Literal["auto", "fast", "prefixspan", "spark"] = Field(
        "auto", description="PrefixSpan engine: auto, fast (compiled), prefixspan (the package) or spark (MLlib on the engine's session)")

    @field_validator("max_gap")
    @classmethod
    def _gap(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v, name="max_gap")
        return v

    @field_validator("markov_orders")
    @classmethod
    def _orders(cls, v: list[int]) -> list[int]:
        bad = [o for o in v if o not in (1, 2, 3)]
        if bad or not v:
            raise ValueError(f"markov_orders must be a non-empty list of 1, 2, 3; got {v!r}")
        return v


class ClusteringParams(_Section):
    """Behavioral clustering (notebook 05)."""

    features: list[str] | None = Field(None, description="user features clustered on (None: segkit's default set)")
    method: Literal["auto", "kmeans", "minibatch", "ward", "spark_kmeans"] = Field("auto", description="clustering algorithm (spark_kmeans: K-Means on Spark MLlib)")
    n_clusters: int | Literal["auto"] = Field("auto", description="number of clusters, or auto from the validation")
    k_min: int = Field(2, ge=2, description="smallest k validated")
    k_max: int = Field(10, ge=2, description="largest k validated")
    scaler: Literal["standard", "robust"] = Field("standard", description="feature scaling after log1p of counts")
    pca: float | None = Field(None, description="PCA components (int) or explained variance share (float); None: off")
    stability_runs: int = Field(10, ge=2, description="subsample pairs behind the stability ARI per k")

    @model_validator(mode="after")
    def _range(self) -> ClusteringParams:
        if self.k_max < self.k_min:
            raise ValueError(f"clustering.k_max ({self.k_max}) is below clustering.k_min ({self.k_min})")
        return self


class IntentParams(_Section):
    """Purchase-intent models (notebook 06)."""

    label_event: str = Field("purchase", description="event the models predict")
    observation: str = Field("28d", description="feature window ending at each cutoff")
    horizon: str = Field("7d", description="label window starting at each cutoff")
    model: Literal["auto", "logistic", "random_forest"] = Field("auto", description="model family (auto: best CV score)")
    param_grid: dict[str, dict[str, list[Any]]] | None = Field(
        default_factory=lambda: {"logistic": {"C": [0.1, 1.0]},
                                 "random_forest": {"n_estimators": [200], "max_depth": [None, 10], "min_samples_leaf": [5]}},
        description="grid per model family (None: segkit's default grids)",
    )
    cv: int = Field(3, ge=2, description="cross-validation folds of the grid search")
    threshold: float | Literal["f1", "youden"] = Field("f1", description="decision threshold, or how to choose it on training scores")
    tier_quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.9], description="score quantiles between low/medium/high intent")

    @field_validator("observation", "horizon")
    @classmethod
    def _windows(cls, v: str, info: Any) -> str:
        parse_duration(v, name=info.field_name)
        return v


class StatesParams(_Section):
    """Latent behavior states (notebook 07)."""

    item: str = Field("flow", description="item granularity of the session sequences")
    candidates: list[int] = Field(default_factory=lambda: [2, 3, 4, 5, 6], description="numbers of states compared by BIC")
    n_iter: int = Field(50, ge=1, description="maximum EM iterations per candidate")
    max_sequences: int | None = Field(50_000, ge=100, description="sessions the model is fitted on (a seeded sample; None: all)")


class ActivationParams(_Section):
    """Activation, monitoring and testing (notebook 08)."""

    mapping: list[dict[str, Any]] = Field(
        default_factory=lambda: [
            {"segment": "vip_cart_abandoners", "action": "call", "channel": "crm", "content": "personal follow-up", "priority": 1},
            {"segment": "cart_abandoners", "action": "email", "channel": "email", "content": "cart reminder",
             "offer": "free shipping", "priority": 2},
            {"segment": "intent_high", "action": "onsite", "channel": "web", "content": "personal recommendations", "priority": 3},
            {"segment": "potential_high_value", "action": "email", "channel": "email", "content": "wishlist back in stock", "priority": 4},
            {"segment": "high_intent_searchers", "action": "onsite", "channel": "web", "content": "search-based picks", "priority": 5},
            {"segment": "scrolled_not_converted", "action": "email", "channel": "email", "content": "related articles and products",
             "priority": 6},
        ],
        description="segment -> action (content, offer, channel); the lowest priority number wins",
    )
    default_action: dict[str, Any] | None = Field(
        default_factory=lambda: {"action": "none", "content": "default homepage"}, description="action for users in no mapped segment"
    )
    compare_days: int = Field(7, ge=1, description="the previous run is the same segments evaluated this many days earlier")
    psi_warn: float = Field(0.1, gt=0, description="PSI above this is a drift warning")
    psi_alert: float = Field(0.25, gt=0, description="PSI above this is a drift alert")
    min_jaccard: float = Field(0.5, ge=0, le=1, description="membership overlap between runs below this is an alert")
    max_size_change: float = Field(0.5, gt=0, description="relative size change between runs above this is an alert")
    min_size: int = Field(50, ge=1, description="segments smaller than this are too small to target")
    max_overlap: float = Field(0.8, gt=0, le=1, description="segment pairs with a Jaccard above this overlap too much")
    leak_auc: float = Field(0.95, gt=0.5, le=1, description="a single feature predicting the label this well leaks it")
    max_staleness: str = Field("2d", description="data older than this at report time is stale")
    experiment_segment: str = Field("scrolled_not_converted", description="segment of the simulated A/B test")
    experiment_baseline: float = Field(0.2, gt=0, lt=1, description="control conversion of the simulated test")
    experiment_lift: float = Field(0.5, gt=-1, description="planted relative lift of the treatment")

    @field_validator("max_staleness")
    @classmethod
    def _stale(cls, v: str) -> str:
        parse_duration(v, name="max_staleness")
        return v


class EngineParams(_Section):
    """Where the event-level transforms run: loading, cleaning, sessions, features, rule segments.

    ``duckdb`` (default) runs in process and spills to disk past ``duckdb_memory_limit``;
    ``spark`` runs the same Ibis definitions on PySpark (the ``spark`` extra and Java 17+),
    against ``spark_master`` (``local[2]``, ``spark://host:7077``, ``yarn``, ...).
    """

    name: Literal["duckdb", "spark"] = Field("duckdb", description="engine: duckdb (in process) or spark")
    duckdb_memory_limit: str | None = Field(None, pattern=r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$",
                                            description="DuckDB memory limit, e.g. '6GB' (DuckDB's default: 80% of RAM)")
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB threads (default: all cores)")
    duckdb_temp_directory: str | None = Field(None, description="where DuckDB spills past its memory limit")
    spark_master: str = Field("local[2]", min_length=1, description="Spark master URL")
    spark_config: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="extra Spark settings, e.g. {spark.executor.memory: 4g}"
    )

    @model_validator(mode="after")
    def _one_engine(self) -> EngineParams:
        if self.name == "spark":
            for key in ("duckdb_memory_limit", "duckdb_threads", "duckdb_temp_directory"):
                if getattr(self, key) is not None:
                    raise ValueError(f"engine.{key} is set but engine.name is 'spark'; it only applies to duckdb")
        elif self.spark_config:
            raise ValueError("engine.spark_config is set but engine.name is 'duckdb'; set name: spark to use it")
        return self


class ReportParams(_Section):
    """How ``make report`` executes notebooks."""

    cell_timeout: int = Field(900, ge=10, description="seconds one cell may run")
    notebooks: list[str] | None = Field(
        None, description="notebook numbers or names to run (e.g. ['01', '02', '04']); None: all"
    )


class Params(_Section):
    """One named parameter set (a ``parameters/NAME.yaml`` file).

    Examples
    --------
    >>> p = Params(name="demo", simulate={"n_users": 500})
    >>> p.flat()["simulate_n_users"]
    500
    """

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="the set's name (reports/NAME/)")
    description: str = Field("", description="what this parameter set is for")
    seed: int = Field(0, ge=0, description="seed of every random step")
    taxonomy: str = Field("parameters/taxonomy/default.yaml", description="event taxonomy / tracking plan")
    data: DataParams = Field(default_factory=DataParams)
    engine: EngineParams = Field(default_factory=EngineParams)
    simulate: SimulateParams = Field(default_factory=SimulateParams)
    cleaning: CleaningParams = Field(default_factory=CleaningParams)
    sessions: SessionParams = Field(default_factory=SessionParams)
    segments: SegmentParams = Field(default_factory=SegmentParams)
    sequences: SequenceParams = Field(default_factory=SequenceParams)
    clustering: ClusteringParams = Field(default_factory=ClusteringParams)
    intent: IntentParams = Field(default_factory=IntentParams)
    states: StatesParams = Field(default_factory=StatesParams)
    activation: ActivationParams = Field(default_factory=ActivationParams)
    report: ReportParams = Field(default_factory=ReportParams)

    def flat(self) -> dict[str, Any]:
        """Flatten to ``section_key`` literals, the names notebooks declare in their parameters cell."""
        out: dict[str, Any] = {}
        for key, value in self.model_dump(mode="json").items():
            if isinstance(value, dict) and key in _SECTIONS:
                for sub, subval in value.items():
                    out[f"{key}_{sub}"] = subval
            else:
                out[key] = value
        return out

    @classmethod
    def flat_keys(cls) -> list[str]:
        """All flat names a notebook may declare."""
        keys: list[str] = []
        for key, field in cls.model_fields.items():
            if key in _SECTIONS:
                keys.extend(f"{key}_{sub}" for sub in _SECTIONS[key].model_fields)
            else:
                keys.append(key)
        return keys

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> Params:
        """Rebuild from flat keys (unknown keys are an error with a did-you-mean hint)."""
        nested: dict[str, Any] = {}
        known = cls.flat_keys()
        for key, value in flat.items():
            if key not in known:
                raise ParameterError(
                    key, value, message=f"Unknown parameter {key!r};{did_you_mean(key, known)} Allowed: {format_allowed(known)}"
                )
            section = next((s for s in _SECTIONS if key.startswith(s + "_") and key[len(s) + 1 :] in _SECTIONS[s].model_fields), None)
            if section:
                nested.setdefault(section, {})[key[len(section) + 1 :]] = value
            else:
                nested[key] = value
        return _validate(nested, source="notebook parameters")

    def resolve(self, path: str | Path, root: str | Path | None = None) -> Path:
        """Resolve a path from the parameter set against the repository root."""
        p = Path(path)
        return p if p.is_absolute() else Path(root or repo_root()) / p


_SECTIONS: dict[str, type[_Section]] = {
    "data": DataParams,
    "engine": EngineParams,
    "simulate": SimulateParams,
    "cleaning": CleaningParams,
    "sessions": SessionParams,
    "segments": SegmentParams,
    "sequences": SequenceParams,
    "clustering": ClusteringParams,
    "intent": IntentParams,
    "states": StatesParams,
    "activation": ActivationParams,
    "report": ReportParams,
}


def repo_root(start: str | Path | None = None) -> Path:
    """The repository root: the nearest folder above ``start`` (default: cwd) holding ``parameters/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "parameters").is_dir() and (folder / "segkit").is_dir():
            return folder
    return here


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        if isinstance(part, str) and part in _SECTIONS and model is Params:
            model = _SECTIONS[part]
    return model


def _convert(exc: ValidationError, data: Mapping[str, Any], source: str) -> ParameterError:
    problems = []
    first: tuple[str, Any, Any] | None = None
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            fields = list(_model_for(loc).model_fields)
            msg = f"unknown key {dotted!r};{did_you_mean(str(loc[-1]), fields)} allowed: {format_allowed(fields)}"
            allowed: Any = fields
        else:
            expected = err["msg"].removeprefix("Value error, ")
            msg = f"{dotted}: got {value!r}; {expected}"
            allowed = expected
        problems.append(msg)
        if first is None:
            first = (dotted, value, allowed)
    assert first is not None
    text = f"Invalid parameters in {source}:\n  - " + "\n  - ".join(problems)
    return ParameterError(first[0], first[1], first[2], message=text)


def _validate(data: Mapping[str, Any], *, source: str) -> Params:
    try:
        return Params.model_validate(dict(data))
    except ValidationError as exc:
        raise _convert(exc, data, source) from None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        siblings = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ParameterError(
            "params",
            str(path),
            siblings,
            message=f"Parameter file {str(path)!r} not found;{did_you_mean(path.stem, siblings)} "
            f"available in {str(path.parent)!r}: {format_allowed(siblings)}",
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError("params", str(path), message=f"Parameter file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ParameterError("params", str(path), message=f"Parameter file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def load_params(path: str | Path) -> Params:
    """Load and validate a parameter set.

    A file may start from another set with ``extends: NAME`` (a file beside it); its keys are
    merged over the base, section by section.

    Parameters
    ----------
    path : str or Path
        ``parameters/NAME.yaml``, or just ``NAME`` (looked up in ``parameters/``).

    Examples
    --------
    >>> load_params("parameters/default.yaml").name  # doctest: +SKIP
    'default'
    """
    p = Path(path)
    if p.suffix not in (".yaml", ".yml"):
        p = repo_root() / PARAMETERS_DIR / f"{p.name}.yaml" if not p.parent.name else p.with_suffix(".yaml")
    data = _read_yaml(p)
    seen = {p.resolve()}
    while "extends" in data:
        base_path = p.parent / f"{data.pop('extends')}.yaml"
        if base_path.resolve() in seen:
            raise ParameterError("extends", base_path.stem, message=f"Parameter files extend each other in a cycle: {base_path}")
        seen.add(base_path.resolve())
        data = _deep_merge(_read_yaml(base_path), data)
    data.setdefault("name", p.stem)
    return _validate(data, source=str(p))


def params_from_namespace(namespace: Mapping[str, Any]) -> Params:
    """Build :class:`Params` from a notebook's variables, taking the flat keys it declares.

    Names the parameter set does not define (``run_dir``, imports, ...) are ignored; keys it does
    define are validated as in :func:`load_params`. A notebook calls it right after the
    ``parameters`` cell as ``params = segkit.params_from_namespace(globals())``.
    """
    keys = set(Params.flat_keys())
    picked = {k: v for k, v in namespace.items() if k in keys}
    picked.setdefault("name", "notebook")
    return Params.from_flat(picked)


def validate_parameter_dir(folder: str | Path = PARAMETERS_DIR) -> dict[str, Params]:
    """Validate every parameter set (``*.yaml``) in ``folder``, the taxonomy and the segment
    definitions each one names (unknown step events get a did-you-mean against the taxonomy).

    Raises the first :class:`ParameterError`, naming the file. Returns ``{name: Params}``.
    """
    from .segments import load_segments, validate_segments
    from .taxonomy import load_taxonomy

    folder = Path(folder)
    root = folder.resolve().parent
    out: dict[str, Params] = {}
    for path in sorted(folder.glob("*.yaml")):
        params = load_params(path)
        taxonomy = load_taxonomy(params.resolve(params.taxonomy, root))
        seg_path = params.resolve(params.segments.definitions, root)
        try:
            validate_segments(load_segments(seg_path), taxonomy_events=taxonomy)
        except ParameterError as exc:
            raise ParameterError(exc.name, exc.value, message=f"{path.name}: segments.definitions {str(seg_path)!r}: {exc}") from exc
        out[params.name] = params
    return out
