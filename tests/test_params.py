from pathlib import Path

import pandas as pd
import pytest

from segkit.errors import ParameterError
from segkit.params import Params, load_params, params_from_namespace, parse_duration, validate_parameter_dir

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="set.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_default_set_loads_and_is_frozen():
    p = load_params(REPO / "parameters" / "default.yaml")
    assert p.name == "default" and p.seed == 42 and p.data.source == "simulate"
    assert p.simulate.n_users >= 10_000
    with pytest.raises(Exception):
        p.seed = 1  # frozen


def test_all_committed_sets_validate():
    sets = validate_parameter_dir(REPO / "parameters")
    assert {"default", "small", "rees46"} <= set(sets)
    assert sets["small"].simulate.n_users == 2000 and sets["small"].seed == 42  # extends default


def test_unknown_key_did_you_mean(tmp_path):
    f = write(tmp_path, "simulate:\n  n_user: 10\n")
    with pytest.raises(ParameterError, match=r"unknown key 'simulate.n_user'; did you mean 'n_users'\?") as info:
        load_params(f)
    assert info.value.name == "simulate.n_user"


def test_unknown_top_level_section(tmp_path):
    with pytest.raises(ParameterError, match="unknown key 'simulat'; did you mean 'simulate'"):
        load_params(write(tmp_path, "simulat: {}\n"))


def test_wrong_type_names_key_value_and_expected(tmp_path):
    with pytest.raises(ParameterError, match=r"simulate.n_users: got 'many'; Input should be a valid integer"):
        load_params(write(tmp_path, "simulate:\n  n_users: many\n"))


def test_out_of_range_value(tmp_path):
    with pytest.raises(ParameterError, match=r"simulate.bot_share: got 0.9; Input should be less than or equal to 0.5"):
        load_params(write(tmp_path, "simulate:\n  bot_share: 0.9\n"))


def test_mode_mismatch_is_an_error(tmp_path):
    with pytest.raises(ParameterError, match="data.path is set but data.source is 'simulate'"):
        load_params(write(tmp_path, "data:\n  path: events.csv\n"))
    with pytest.raises(ParameterError, match="data.source is 'file' but data.path is not set"):
        load_params(write(tmp_path, "data:\n  source: file\n"))


def test_missing_file_lists_available(tmp_path):
    write(tmp_path, "seed: 1\n", "default.yaml")
    with pytest.raises(ParameterError, match=r"not found; did you mean 'default'\?"):
        load_params(tmp_path / "defualt.yaml")


def test_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(ParameterError, match="is not valid YAML"):
        load_params(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ParameterError, match="must hold a mapping, got list"):
        load_params(write(tmp_path, "- 1\n- 2\n"))


def test_extends_merges_sections_and_detects_cycles(tmp_path):
    write(tmp_path, "seed: 3\nsimulate:\n  n_users: 500\n  n_days: 10\n", "base.yaml")
    child = load_params(write(tmp_path, "extends: base\nsimulate:\n  n_days: 20\n", "child.yaml"))
    assert (child.seed, child.simulate.n_users, child.simulate.n_days, child.name) == (3, 500, 20, "child")
    write(tmp_path, "extends: b\n", "a.yaml")
    write(tmp_path, "extends: a\n", "b.yaml")
    with pytest.raises(ParameterError, match="cycle"):
        load_params(tmp_path / "a.yaml")


def test_flat_round_trip_and_unknown_flat_key():
    p = Params(name="x", seed=5, simulate={"n_users": 700})
    flat = p.flat()
    assert flat["simulate_n_users"] == 700 and flat["seed"] == 5
    assert Params.from_flat(flat) == p
    with pytest.raises(ParameterError, match=r"Unknown parameter 'simulate_n_user'; did you mean 'simulate_n_users'\?"):
        Params.from_flat({"name": "x", "simulate_n_user": 3})


def test_params_from_namespace_ignores_other_names():
    ns = {"seed": 9, "simulate_n_users": 300, "run_dir": "../runs/x", "pd": pd}
    p = params_from_namespace(ns)
    assert p.seed == 9 and p.simulate.n_users == 300 and p.name == "notebook"
    with pytest.raises(ParameterError, match="simulate.n_users: got 10; Input should be greater than or equal to 50"):
        params_from_namespace({"simulate_n_users": 10})


@pytest.mark.parametrize("text,expected", [("30m", "30min"), ("24h", "24h"), ("7d", "7D"), ("90s", "90s"), ("2w", "14D")])
def test_parse_duration_units(text, expected):
    assert parse_duration(text) == pd.Timedelta(expected)


@pytest.mark.parametrize("bad", ["1800", 1800, "30 parsecs", "", None, "-5m", "0s"])
def test_parse_duration_rejects_bare_numbers_and_junk(bad):
    with pytest.raises(ParameterError, match="timeout"):
        parse_duration(bad, name="timeout")


def test_parameter_dir_checks_the_segment_definitions_each_set_names(tmp_path):
    import shutil

    folder = tmp_path / "parameters"
    (folder / "segments").mkdir(parents=True)
    shutil.copytree(REPO / "parameters" / "taxonomy", folder / "taxonomy")
    (folder / "segments" / "typo.yaml").write_text("segments:\n  buyers:\n    did: purchse\n")
    (folder / "shop.yaml").write_text(
        f"taxonomy: {folder / 'taxonomy' / 'default.yaml'}\nsegments:\n  definitions: {folder / 'segments' / 'typo.yaml'}\n"
    )
    with pytest.raises(ParameterError, match=r"shop\.yaml: segments\.definitions .*typo\.yaml.*'purchse'.*did you mean 'purchase'"):
        validate_parameter_dir(folder)


def test_segments_section_rejects_a_one_step_funnel_and_a_bare_window():
    with pytest.raises(ParameterError, match="at least 2 steps"):
        Params.from_flat({"name": "x", "segments_funnel_steps": ["purchase"]})
    with pytest.raises(ParameterError, match="funnel_within"):
        Params.from_flat({"name": "x", "segments_funnel_within": "7"})


def test_the_spark_set_runs_mllib_for_patterns_and_clusters_and_engines_are_checked(tmp_path):
    sets = validate_parameter_dir(REPO / "parameters")
    spark = sets["spark"]
    assert spark.engine.name == "spark" and spark.sequences.engine == "spark" and spark.clustering.method == "spark_kmeans"
    assert {"04", "05"} <= set(spark.report.notebooks)
    flat = spark.flat()
    assert flat["sequences_engine"] == "spark" and flat["clustering_method"] == "spark_kmeans"
    with pytest.raises(ParameterError, match=r"sequences.engine: got 'mllib'; Input should be 'auto', 'fast', 'prefixspan' or 'spark'"):
        load_params(write(tmp_path, "sequences:\n  engine: mllib\n"))
