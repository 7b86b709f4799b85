"""segkit: reproducible behavioral segmentation of clickstream events.

The public surface, by step of the notebook series:

- events: :func:`validate_events`, :func:`read_events`, :func:`load_events`, :func:`parse_timestamps`
- built-in data: :func:`simulate_shop`
- parameters: :func:`load_params`, :func:`params_from_namespace`, :func:`parse_duration`
- taxonomy: :func:`load_taxonomy`, :func:`apply_taxonomy`, :func:`event_catalog`,
  :func:`unknown_events`, :func:`check_tracking_plan`
- run artifacts: :func:`save_artifact`, :func:`load_artifact`, :func:`load_source`, :func:`record_source`
"""
from importlib.metadata import version as _version

from . import plots
from .artifacts import list_artifacts, load_artifact, save_artifact
from .errors import ArtifactError, NotFittedError, ParameterError, SchemaError, SegkitError
from .io import DataQualityWarning, LoadedEvents, load_events, read_events
from .params import Params, load_params, params_from_namespace, parse_duration, validate_parameter_dir
from .schema import validate_events
from .simulate import Shop, simulate_shop
from .sources import SourceData, load_source, record_source
from .summary import count_values
from .taxonomy import (
    Taxonomy,
    apply_taxonomy,
    check_tracking_plan,
    event_catalog,
    load_taxonomy,
    taxonomy_summary,
    unknown_events,
)
from .timestamps import parse_timestamps

__version__ = _version("segkit")
__all__ = [
    "__version__",
    "plots",
    "SegkitError",
    "SchemaError",
    "ParameterError",
    "ArtifactError",
    "NotFittedError",
    "validate_events",
    "LoadedEvents",
    "DataQualityWarning",
    "load_events",
    "read_events",
    "parse_timestamps",
    "Shop",
    "simulate_shop",
    "Params",
    "load_params",
    "params_from_namespace",
    "parse_duration",
    "validate_parameter_dir",
    "Taxonomy",
    "load_taxonomy",
    "apply_taxonomy",
    "event_catalog",
    "unknown_events",
    "check_tracking_plan",
    "taxonomy_summary",
    "count_values",
    "save_artifact",
    "load_artifact",
    "list_artifacts",
    "SourceData",
    "load_source",
    "record_source",
]
