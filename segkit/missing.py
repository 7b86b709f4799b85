"""Missing values: report them per column, and fill or drop them by a per-column policy.

A value is *missing* when it is ``None`` / ``NaN`` / ``NA`` / ``NaT`` or, in a text column, an
empty or whitespace-only string (see :func:`is_missing`).

Policies come from parameter files as plain values and are parsed into typed, frozen objects
(:func:`parse_policy`):

==================================================  ==============================================
policy                                              meaning
==================================================  ==============================================
``"drop"``                                          drop the row (returned in ``.dropped``)
``"mode"``                                          most frequent value (ties: the smallest)
``"median"`` / ``"mean"``                           numeric columns only
``{"fill": value}``                                 a constant of the column's type
``{"model": {"features": [...], ...}}``             predict from other columns with scikit-learn
==================================================  ==============================================

Examples
--------
>>> import pandas as pd
>>> ev = pd.DataFrame({"device": ["Mobile", None, " "], "engagement_ms": [10.0, None, 30.0]})
>>> res = impute_missing(ev, {"device": {"fill": "Other"}, "engagement_ms": "median"})
>>> res.events["device"].tolist(), res.events["engagement_ms"].tolist()
(['Mobile', 'Other', 'Other'], [10.0, 20.0, 30.0])
"""
from __future__ import annotations

import datetime as _dt
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np
import pandas as pd

from .engine import Data, as_table, to_pandas
from .errors import ParameterError, check_columns, did_you_mean, format_allowed

__all__ = [
    "POLICY_NAMES",
    "FillPolicy",
    "DropPolicy",
    "ModePolicy",
    "MedianPolicy",
    "MeanPolicy",
    "ModelPolicy",
    "Policy",
    "ImputeResult",
    "is_missing",
    "missing_report",
    "parse_policy",
    "parse_policies",
    "impute_missing",
]

POLICY_NAMES: tuple[str, ...] = ("drop", "fill", "mode", "median", "mean", "model")
"""Names of the imputation policies."""

_N_EXAMPLES = 3
_N_MISSING_ROWS = 5
_MISSING_TOKEN = "__missing__"


# --------------------------------------------------------------------------------------------
# policies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropPolicy:
    """Drop rows where the column is missing."""

    name: Literal["drop"] = field(default="drop", init=False)


@dataclass(frozen=True)
class FillPolicy:
    """Fill with a constant ``value`` of the column's type."""

    value: Any
    name: Literal["fill"] = field(default="fill", init=False)


@dataclass(frozen=True)
class ModePolicy:
    """Fill with the most frequent non-missing value (ties: the smallest)."""

    name: Literal["mode"] = field(default="mode", init=False)


@dataclass(frozen=True)
class MedianPolicy:
    """Fill a numeric column with its median (rounded for integer columns)."""

    name: Literal["median"] = field(default="median", init=False)


@dataclass(frozen=True)
class MeanPolicy:
    """Fill a numeric column with its mean (rounded for integer columns)."""

    name: Literal["mean"] = field(default="mean", init=False)


@dataclass(frozen=True)
class ModelPolicy:
    """Predict missing values from ``features`` with a scikit-learn model.

    A classifier for text, categorical and boolean columns, a regressor for numeric ones.
    Text features are ordinal-encoded (random forest) or one-hot encoded (k-NN, the 50 most
    frequent values); numeric features are median-filled (and standardized for k-NN); datetime
    features become epoch seconds.

    Parameters
    ----------
    features : tuple of str
        Predictor columns; must not include the column itself.
    estimator : {"random_forest", "knn"}, default="random_forest"
        The model family.
    random_state : int, default=0
        Seed of the forest and of the training-row sample.
    n_estimators : int, optional
        Trees of the random forest (default 100); only with ``estimator="random_forest"``.
    n_neighbors : int, optional
        Neighbours of k-NN (default 5); only with ``estimator="knn"``.
    max_train_rows : int, default=100_000
        Fit on a random sample of at most this many rows with a known value.
    """

    features: tuple[str, ...]
    estimator: Literal["random_forest", "knn"] = "random_forest"
    random_state: int = 0
    n_estimators: int | None = None
    n_neighbors: int | None = None
    max_train_rows: int = 100_000
    name: Literal["model"] = field(default="model", init=False)

    def describe(self) -> str:
        """A short text for reports: ``random_forest(features=['user_agent'])``."""
        return f"{self.estimator}(features={list(self.features)})"


Policy = Union[DropPolicy, FillPolicy, ModePolicy, MedianPolicy, MeanPolicy, ModelPolicy]
_SIMPLE = {"drop": DropPolicy, "mode": ModePolicy, "median": MedianPolicy, "mean": MeanPolicy}
_MODEL_KEYS = ("features", "estimator", "random_state", "n_estimators", "n_neighbors", "max_train_rows")
_ESTIMATORS = ("random_forest", "knn")


def _bad(name: str, value: Any, message: str) -> ParameterError:
    return ParameterError(name, value, list(POLICY_NAMES), message=f"Parameter {name!r} got {value!r}; {message}")


def _int_param(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(name, value, f"an integer >= {minimum}")
    return int(value)


def _parse_model(spec: Any, name: str) -> ModelPolicy:
    if not isinstance(spec, Mapping):
        raise ParameterError(name, spec, message=f"Parameter {name!r} got {spec!r}; 'model' takes a mapping with 'features'")
    for key in spec:
        if key not in _MODEL_KEYS:
            raise ParameterError(
                f"{name}.{key}",
                key,
                list(_MODEL_KEYS),
                message=f"Unknown model option {key!r} in {name!r};{did_you_mean(str(key), _MODEL_KEYS)} "
                f"Allowed: {format_allowed(_MODEL_KEYS)}",
            )
    features = spec.get("features")
    if isinstance(features, str) or not isinstance(features, Sequence) or not features or not all(isinstance(f, str) for f in features):
        raise ParameterError(f"{name}.features", features, "a non-empty list of column names")
    estimator = spec.get("estimator", "random_forest")
    if estimator not in _ESTIMATORS:
        raise ParameterError(f"{name}.estimator", estimator, list(_ESTIMATORS))
    if "n_estimators" in spec and estimator != "random_forest":
        raise ParameterError(
            f"{name}.n_estimators", spec["n_estimators"], message=f"{name}.n_estimators is set but estimator is {estimator!r}"
        )
    if "n_neighbors" in spec and estimator != "knn":
        raise ParameterError(
            f"{name}.n_neighbors", spec["n_neighbors"], message=f"{name}.n_neighbors is set but estimator is {estimator!r}"
        )
    return ModelPolicy(
        features=tuple(dict.fromkeys(features)),
        estimator=estimator,
        random_state=_int_param(f"{name}.random_state", spec.get("random_state", 0), 0),
        n_estimators=_int_param(f"{name}.n_estimators", spec["n_estimators"], 1) if "n_estimators" in spec else None,
        n_neighbors=_int_param(f"{name}.n_neighbors", spec["n_neighbors"], 1) if "n_neighbors" in spec else None,
        max_train_rows=_int_param(f"{name}.max_train_rows", spec.get("max_train_rows", 100_000), 1),
    )


def parse_policy(spec: Any, *, name: str = "policy") -> Policy:
    """Parse one policy from its plain form (as written in YAML) into a typed, frozen object.

    Parameters
    ----------
    spec : str, mapping or Policy
        ``"drop"``, ``"mode"``, ``"median"``, ``"mean"``, ``{"fill": value}``,
        ``{"model": {"features": [...], "estimator": ..., ...}}`` or an already parsed policy.
    name : str, default="policy"
        Name used in error messages (``policies.device``).

    Returns
    -------
    Policy

    Raises
    ------
    ParameterError
        For an unknown policy name (with a did-you-mean hint), a malformed mapping or a bad
        model option.

    Examples
    --------
    >>> parse_policy("median")
    MedianPolicy(name='median')
    >>> parse_policy({"fill": "Other"})
    FillPolicy(value='Other', name='fill')
    >>> parse_policy({"model": {"features": ["user_agent"], "estimator": "knn"}}).n_neighbors is None
    True
    """
    if isinstance(spec, (DropPolicy, FillPolicy, ModePolicy, MedianPolicy, MeanPolicy, ModelPolicy)):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in _SIMPLE:
            return _SIMPLE[key]()
        if key == "fill":
            raise _bad(name, spec, "'fill' needs a value: write {'fill': <value>}")
        if key == "model":
            raise _bad(name, spec, "'model' needs options: write {'model': {'features': [...]}}")
        raise ParameterError(name, spec, list(POLICY_NAMES))
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            raise _bad(name, spec, "a policy mapping has exactly one key, 'fill' or 'model'")
        (key, value), = spec.items()
        if key == "fill":
            if value is None or (isinstance(value, float) and np.isnan(value)):
                raise _bad(name, spec, "a fill value must not be missing")
            return FillPolicy(value)
        if key == "model":
            return _parse_model(value, f"{name}.model")
        if key in _SIMPLE:
            raise _bad(name, spec, f"{key!r} takes no options; write it as the string {key!r}")
        raise ParameterError(
            name,
            key,
            list(POLICY_NAMES),
            message=f"Parameter {name!r} has unknown policy {key!r};{did_you_mean(str(key), POLICY_NAMES)} "
            f"Allowed: {format_allowed(POLICY_NAMES)}",
        )
    raise _bad(name, spec, "a policy is a name ('drop', 'mode', 'median', 'mean') or a mapping {'fill': v} / {'model': {...}}")


def parse_policies(policies: Mapping[str, Any]) -> dict[str, Policy]:
    """Parse a mapping ``column -> policy`` (see :func:`parse_policy`), keeping its order.

    Examples
    --------
    >>> parse_policies({"device": "mode"})
    {'device': ModePolicy(name='mode')}
    """
    if not isinstance(policies, Mapping):
        raise ParameterError("policies", policies, "a mapping column -> policy")
    return {str(col): parse_policy(spec, name=f"policies.{col}") for col, spec in policies.items()}


# --------------------------------------------------------------------------------------------
# detecting and reporting
# --------------------------------------------------------------------------------------------


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or s.dtype == object


def is_missing(values: pd.Series) -> pd.Series:
    """Boolean mask of missing values: null, or an empty / whitespace-only string.

    Examples
    --------
    >>> import pandas as pd
    >>> is_missing(pd.Series(["a", "", "  ", None, float("nan")])).tolist()
    [False, True, True, True, True]
    """
    mask = values.isna().to_numpy(dtype=bool)
    if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
        obj = values.astype("object").to_numpy()
        mask = mask | np.fromiter((isinstance(v, str) and not v.strip() for v in obj), dtype=bool, count=len(obj))
    elif pd.api.types.is_string_dtype(values.dtype):
        mask = mask | values.str.strip().eq("").to_numpy(dtype=bool, na_value=False)
    return pd.Series(mask, index=values.index, name=values.name)


def _as_frame(events: Data) -> pd.DataFrame:
    if isinstance(events, pd.DataFrame):
        return events
    return to_pandas(as_table(events))


def _n_unique(s: pd.Series) -> int:
    try:
        return int(s.nunique(dropna=True))
    except TypeError:  # unhashable values (lists, dicts)
        return int(s.astype(str).nunique(dropna=True))


def _examples(s: pd.Series, k: int) -> list[Any]:
    out: list[Any] = []
    seen: set[str] = set()
    for v in s:
        key = repr(v)
        if key not in seen:
            seen.add(key)
            out.append(v.item() if isinstance(v, np.generic) else v)
        if len(out) == k:
            break
    return out


def missing_report(events: Data, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Count missing values per column, with examples of present values and of missing rows.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Any table (non-pandas inputs are executed first).
    columns : sequence of str, optional
        Columns to report, in this order; default: every column of ``events``. Columns the frame
        does not have are an error (a typo would otherwise look like a clean column); columns
        the schema allows but the frame lacks are simply not reported.

    Returns
    -------
    pandas.DataFrame
        One row per column: ``column``, ``dtype``, ``n_missing``, ``share_missing`` (0-1),
        ``n_unique`` (distinct present values), ``examples`` (up to 3 distinct present values)
        and ``missing_rows`` (up to 5 index labels of rows where the value is missing).

    Raises
    ------
    SchemaError
        If a named column is not in ``events``.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"device": ["Mobile", "", None, "Desktop"], "price": [1.0, 2.0, None, 2.0]})
    >>> missing_report(ev)[["column", "n_missing", "share_missing", "n_unique", "missing_rows"]]
       column  n_missing  share_missing  n_unique missing_rows
    0  device          2           0.50         2       [1, 2]
    1   price          1           0.25         2          [2]
    """
    df = _as_frame(events)
    if columns is None:
        cols = list(df.columns)
    else:
        if isinstance(columns, str):
            raise ParameterError("columns", columns, "a list of column names")
        check_columns([str(c) for c in df.columns], [str(c) for c in columns], what="events")
        cols = list(dict.fromkeys(columns))
    rows = []
    n = len(df)
    for col in cols:
        s = df[col]
        miss = is_missing(s)
        present = s[~miss.to_numpy()]
        rows.append(
            {
                "column": str(col),
                "dtype": str(s.dtype),
                "n_missing": int(miss.sum()),
                "share_missing": float(miss.sum() / n) if n else 0.0,
                "n_unique": _n_unique(present),
                "examples": _examples(present, _N_EXAMPLES),
                "missing_rows": list(s.index[miss.to_numpy()][:_N_MISSING_ROWS]),
            }
        )
    return pd.DataFrame(
        rows, columns=["column", "dtype", "n_missing", "share_missing", "n_unique", "examples", "missing_rows"]
    ).astype({"n_missing": "int64", "share_missing": "float64", "n_unique": "int64"})


# --------------------------------------------------------------------------------------------
# imputing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImputeResult:
    """What :func:`impute_missing` returns.

    Attributes
    ----------
    events : pandas.DataFrame
        The kept rows with missing values filled (original index).
    dropped : pandas.DataFrame
        Rows removed by ``"drop"`` policies (original index) with a ``reason`` column,
        ``"missing_<column>"`` for the first drop column (in policy order) that is missing.
    report : pandas.DataFrame
        One row per policy: ``column``, ``policy``, ``rows_touched`` (filled or dropped) and
        ``value`` (the fill value, mode, median, mean, a model description, or ``None``).
    """

    events: pd.DataFrame
    dropped: pd.DataFrame
    report: pd.DataFrame


def _kind(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s.dtype):
        return "bool"
    if isinstance(s.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        return "timedelta"
    if pd.api.types.is_integer_dtype(s.dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(s.dtype):
        return "float"
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return "text"
    present = s.dropna()
    if present.map(lambda v: isinstance(v, str)).all():
        return "text"
    return "object"


def _check_fill(col: str, s: pd.Series, value: Any) -> Any:
    """The fill value converted for the column, or a ParameterError naming both."""
    kind = _kind(s)
    name = f"policies.{col}.fill"

    def wrong(expected: str) -> ParameterError:
        return ParameterError(
            name,
            value,
            expected,
            message=f"Parameter {name!r} got {value!r} ({type(value).__name__}) but column {col!r} "
            f"is {kind} ({s.dtype}); expected {expected}",
        )

    if kind in ("integer", "float"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise wrong("a number")
        if kind == "integer" and float(value) != int(value):
            raise wrong("a whole number")
        return int(value) if kind == "integer" else float(value)
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise wrong("True or False")
        return bool(value)
    if kind == "datetime":
        if not isinstance(value, (str, _dt.datetime, pd.Timestamp)):
            raise wrong("a timestamp")
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise wrong("a timestamp") from exc
        tz = getattr(s.dtype, "tz", None)
        if (tz is None) != (ts.tz is None):
            raise wrong("a time-zone-aware timestamp" if tz is not None else "a naive timestamp")
        return ts.tz_convert(tz) if tz is not None else ts
    if kind == "timedelta":
        if not isinstance(value, (pd.Timedelta, _dt.timedelta)):
            raise wrong("a Timedelta")
        return pd.Timedelta(value)
    if kind in ("text", "categorical"):
        if not isinstance(value, str):
            raise wrong("a string")
        if not value.strip():
            raise wrong("a non-blank string")
        return value
    return value


def _feature_matrix(base: pd.DataFrame, features: Sequence[str]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Features as a frame of floats (numeric) and strings (categorical, missing as a token)."""
    out = {}
    numeric, categorical = [], []
    for f in features:
        s = base[f]
        kind = _kind(s)
        if kind == "datetime":
            out[f] = ((s - pd.Timestamp(0, tz=getattr(s.dtype, "tz", None))) / pd.Timedelta(seconds=1)).astype("float64")
            numeric.append(f)
        elif kind in ("integer", "float", "bool", "timedelta"):
            vals = s / pd.Timedelta(seconds=1) if kind == "timedelta" else s
            out[f] = pd.to_numeric(vals.astype("object"), errors="coerce").astype("float64")
            numeric.append(f)
        else:
            miss = is_missing(s).to_numpy()
            out[f] = pd.Series(np.where(miss, _MISSING_TOKEN, s.astype("object").astype(str)), index=s.index, dtype=object)
            categorical.append(f)
    return pd.DataFrame(out, index=base.index), numeric, categorical


def _fit_predict(col: str, policy: ModelPolicy, base: pd.DataFrame, miss: np.ndarray) -> np.ndarray:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    target = base[col]
    kind = _kind(target)
    X, numeric, categorical = _feature_matrix(base, policy.features)
    train = np.flatnonzero(~miss)
    if len(train) == 0:
        raise ParameterError(
            f"policies.{col}", policy.describe(), message=f"Cannot fit a model for column {col!r}: it has no non-missing values"
        )
    if len(train) > policy.max_train_rows:
        rng = np.random.default_rng(policy.random_state)
        train = np.sort(rng.choice(train, size=policy.max_train_rows, replace=False))
    regression = kind in ("integer", "float")
    if regression:
        y = pd.to_numeric(target.iloc[train], errors="coerce").to_numpy(dtype="float64")
    else:
        y = target.iloc[train].astype("object").to_numpy()
        if kind == "text":
            y = np.array([str(v) for v in y], dtype=object)

    knn = policy.estimator == "knn"
    num_steps: list[Any] = [SimpleImputer(strategy="median", keep_empty_features=True)]
    if knn:
        num_steps.append(StandardScaler())
    cat_encoder = (
        OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50, sparse_output=False)
        if knn
        else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    )
    transformers = []
    if numeric:
        transformers.append(("num", make_pipeline(*num_steps), numeric))
    if categorical:
        transformers.append(("cat", cat_encoder, categorical))
    prep = ColumnTransformer(transformers)
    if knn:
        k = min(policy.n_neighbors or 5, len(train))
        model = KNeighborsRegressor(n_neighbors=k) if regression else KNeighborsClassifier(n_neighbors=k)
    else:
        cls = RandomForestRegressor if regression else RandomForestClassifier
        model = cls(n_estimators=policy.n_estimators or 100, random_state=policy.random_state, n_jobs=1)
    pipe = Pipeline([("prep", prep), ("model", model)])
    pipe.fit(X.iloc[train], y)
    pred = pipe.predict(X.iloc[np.flatnonzero(miss)])
    if kind == "integer":
        pred = np.rint(pred).astype("int64")
    return pred


def _check_policy(col: str, policy: Policy, s: pd.Series, columns: Sequence[str]) -> Policy:
    kind = _kind(s)
    if isinstance(policy, (MedianPolicy, MeanPolicy)) and kind not in ("integer", "float"):
        raise ParameterError(
            f"policies.{col}",
            policy.name,
            ["mode", "fill", "model", "drop"],
            message=f"Policy {policy.name!r} needs a numeric column, but {col!r} is {kind} ({s.dtype}); "
            "use 'mode', {'fill': value}, a model or 'drop'",
        )
    if isinstance(policy, FillPolicy):
        return FillPolicy(_check_fill(col, s, policy.value))
    if isinstance(policy, ModelPolicy):
        if col in policy.features:
            raise ParameterError(
                f"policies.{col}.model.features", list(policy.features), message=f"Column {col!r} cannot be a feature of its own model"
            )
        check_columns(columns, policy.features, what=f"events (features of the model for {col!r})")
        if kind in ("object", "timedelta", "datetime"):
            raise ParameterError(
                f"policies.{col}", "model", message=f"Policy 'model' cannot predict column {col!r} of dtype {s.dtype}"
            )
    return policy


def _statistic(col: str, policy: Policy, s: pd.Series, miss: np.ndarray) -> Any:
    present = s[~miss]
    if present.empty:
        raise ParameterError(
            f"policies.{col}", policy.name, message=f"Cannot compute the {policy.name} of column {col!r}: it has no non-missing values"
        )
    kind = _kind(s)
    if isinstance(policy, ModePolicy):
        counts = present.value_counts(dropna=True)
        top = counts[counts == counts.max()].index
        try:
            value = sorted(top)[0]
        except TypeError:
            value = top[0]
    elif isinstance(policy, MedianPolicy):
        value = float(present.astype("float64").median())
    else:
        value = float(present.astype("float64").mean())
    if isinstance(value, np.generic):
        value = value.item()
    if kind == "integer" and isinstance(value, float):
        value = int(np.rint(value))
    return value


def impute_missing(events: pd.DataFrame, policies: Mapping[str, Any]) -> ImputeResult:
    """Fill or drop missing values column by column, reporting what each policy did.

    Every statistic and model is computed from the rows that survive the ``"drop"`` policies,
    before anything is filled, so the result does not depend on the order of the policies.
    Missing means null or, in text columns, blank (see :func:`is_missing`); blanks are filled
    too. The input is not modified, and ``len(events) == len(result.events) +
    len(result.dropped)``.

    Parameters
    ----------
    events : pandas.DataFrame
        The table to clean.
    policies : mapping of str to policy
        ``column -> policy`` in plain form (``"drop"``, ``"mode"``, ``"median"``, ``"mean"``,
        ``{"fill": value}``, ``{"model": {"features": [...], "estimator": "random_forest" |
        "knn", "random_state": 0}}``) or parsed :data:`Policy` objects.

    Returns
    -------
    ImputeResult
        ``.events``, ``.dropped`` (with ``reason``) and ``.report``.

    Raises
    ------
    SchemaError
        If a policy names a column (or a model feature) that ``events`` lacks (did-you-mean).
    ParameterError
        For an unknown policy (did-you-mean), ``median`` / ``mean`` on a non-numeric column, a
        fill value of the wrong type, or a statistic / model without any present value.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a", None, "c"], "device": ["Mobile", "Mobile", None]})
    >>> res = impute_missing(ev, {"user_id": "drop", "device": "mode"})
    >>> len(res.events), res.dropped["reason"].tolist(), res.events["device"].tolist()
    (2, ['missing_user_id'], ['Mobile', 'Mobile'])
    >>> res.report[["column", "policy", "rows_touched", "value"]]
        column policy  rows_touched   value
    0  user_id   drop             1    None
    1   device   mode             1  Mobile
    """
    if not isinstance(events, pd.DataFrame):
        raise ParameterError("events", type(events).__name__, message="impute_missing expects a pandas DataFrame")
    parsed = parse_policies(policies)
    columns = [str(c) for c in events.columns]
    check_columns(columns, list(parsed), what="events")
    parsed = {col: _check_policy(col, p, events[col], columns) for col, p in parsed.items()}

    masks = {col: is_missing(events[col]).to_numpy() for col in parsed}
    drop_cols = [c for c, p in parsed.items() if isinstance(p, DropPolicy)]
    reason = np.full(len(events), None, dtype=object)
    for col in drop_cols:
        reason[masks[col] & (reason == None)] = f"missing_{col}"  # noqa: E711 (elementwise)
    dropped_mask = reason != None  # noqa: E711
    dropped = events.loc[dropped_mask].assign(reason=pd.Series(reason[dropped_mask], index=events.index[dropped_mask], dtype="string"))
    base = events.loc[~dropped_mask]
    out = base.copy()

    report = []
    for col, policy in parsed.items():
        if isinstance(policy, DropPolicy):
            report.append({"column": col, "policy": "drop", "rows_touched": int((reason == f"missing_{col}").sum()), "value": None})
            continue
        miss = masks[col][~dropped_mask]
        n = int(miss.sum())
        if isinstance(policy, FillPolicy):
            value: Any = policy.value
        elif isinstance(policy, ModelPolicy):
            value = policy.describe()
        else:
            value = _statistic(col, policy, base[col], miss) if (n or (~miss).any()) else None
        if n:
            fill = _fit_predict(col, policy, base, miss) if isinstance(policy, ModelPolicy) else value
            target = out[col]
            if isinstance(target.dtype, pd.CategoricalDtype):
                new_cats = pd.Index(np.unique(np.asarray(fill, dtype=object).ravel())).difference(target.cat.categories)
                if len(new_cats):
                    out[col] = target.cat.add_categories(list(new_cats))
            col_values = out[col].copy()
            col_values.iloc[np.flatnonzero(miss)] = fill
            out[col] = col_values
        report.append({"column": col, "policy": policy.name, "rows_touched": n, "value": value})
    report_df = pd.DataFrame(
        {
            "column": pd.Series([r["column"] for r in report], dtype=object),
            "policy": pd.Series([r["policy"] for r in report], dtype=object),
            "rows_touched": pd.Series([r["rows_touched"] for r in report], dtype="int64"),
            "value": pd.Series([r["value"] for r in report], dtype=object),
        }
    )
    return ImputeResult(events=out, dropped=dropped, report=report_df)
