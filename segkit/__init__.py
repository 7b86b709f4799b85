"""segkit: reproducible behavioral segmentation of clickstream events.

The public surface, by step of the notebook series:

- events: :func:`validate_events`, :func:`read_events`, :func:`load_events`, :func:`parse_timestamps`
- built-in data: :func:`simulate_shop`
- parameters: :func:`load_params`, :func:`params_from_namespace`, :func:`parse_duration`
- taxonomy: :func:`load_taxonomy`, :func:`apply_taxonomy`, :func:`event_catalog`,
  :func:`unknown_events`, :func:`check_tracking_plan`
- cleaning: :func:`clean_events` (ledger and quarantine), :func:`filter_bots`,
  :func:`classify_user_agents`, :func:`normalize_devices`, :func:`normalize_urls`,
  :func:`assign_page_types`, :func:`find_duplicates`, :func:`missing_report`, :func:`impute_missing`
- sessions and features: :func:`split_sessions`, :func:`session_table`, :func:`build_user_features`,
  :func:`feature_registry`, :func:`feature_percentiles`
- segments: :func:`load_segments`, :func:`validate_segments`, :func:`evaluate_segments`,
  :func:`describe_segments`, :func:`segment_sizes`, :func:`funnel`; outputs (overlaps, profiles,
  persona make-up, scroll heatmap, exports) in :mod:`segkit.membership`
- sequences: :func:`build_sequences`, :func:`mine_patterns`, :func:`discriminative_patterns`,
  :class:`MarkovChain`, :func:`select_markov_order`
- clusters, intent, behavior states: :mod:`segkit.clustering`, :mod:`segkit.intent`,
  :mod:`segkit.states` (on :class:`BatchedCategoricalHMM`)
- activation and monitoring: :mod:`segkit.activation`, :mod:`segkit.monitoring`,
  :mod:`segkit.experiments`; the report headline: :mod:`segkit.stakeholder`
- run artifacts: :func:`save_artifact`, :func:`load_artifact`, :func:`load_source`, :func:`record_source`
- the PySpark engine (optional extra ``spark``): :mod:`segkit.spark` (session, Ibis connection,
  PrefixSpan and K-Means on Spark MLlib); importing it does not import pyspark
"""
from importlib.metadata import version as _version

from . import activation, clustering, experiments, intent, membership, monitoring, plots, spark, stakeholder, states
from .bots import BotResult, bot_signals, classify_user_agents, filter_bots, score_bots
from .clean import CleanResult, access_log_bot_report, clean_events, compare_quality, pipeline_summary, quality_report
from .features import build_user_features, feature_percentiles, feature_registry
from .missing import ImputeResult, impute_missing, missing_report
from .sessions import session_table, split_sessions
from .standardize import assign_page_types, find_duplicates, normalize_devices, normalize_urls, parse_user_agents
from .artifacts import list_artifacts, load_artifact, save_artifact
from .engine import connect, use_engine
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
from .segments import Segment, describe_segments, definition_hash, evaluate_segments, load_segments, segment_sizes, validate_segments
from .funnels import FunnelResult, funnel, plot_funnel
from .membership import export_membership, read_membership
from .sequences import Sequences, build_sequences
from .patterns import discriminative_patterns, mine_patterns, pattern_condition, pattern_features
from .markov import MarkovChain, select_markov_order
from .hmm import BatchedCategoricalHMM, name_states, select_n_states, state_occupancy

__version__ = _version("segkit")
__all__ = [
    "connect",
    "use_engine",
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
    "BotResult",
    "bot_signals",
    "classify_user_agents",
    "filter_bots",
    "score_bots",
    "CleanResult",
    "clean_events",
    "access_log_bot_report",
    "quality_report",
    "compare_quality",
    "pipeline_summary",
    "ImputeResult",
    "impute_missing",
    "missing_report",
    "normalize_devices",
    "normalize_urls",
    "assign_page_types",
    "find_duplicates",
    "parse_user_agents",
    "split_sessions",
    "session_table",
    "build_user_features",
    "feature_registry",
    "feature_percentiles",
    "membership",
    "clustering",
    "intent",
    "states",
    "activation",
    "monitoring",
    "experiments",
    "stakeholder",
    "spark",
    "Segment",
    "load_segments",
    "validate_segments",
    "evaluate_segments",
    "describe_segments",
    "definition_hash",
    "segment_sizes",
    "FunnelResult",
    "funnel",
    "plot_funnel",
    "export_membership",
    "read_membership",
    "Sequences",
    "build_sequences",
    "mine_patterns",
    "discriminative_patterns",
    "pattern_features",
    "pattern_condition",
    "MarkovChain",
    "select_markov_order",
    "BatchedCategoricalHMM",
    "select_n_states",
    "name_states",
    "state_occupancy",
]
