import numpy as np
import pandas as pd
import pytest

from segkit.artifacts import ARTIFACTS, list_artifacts, load_artifact, save_artifact
from segkit.errors import ArtifactError


def test_table_round_trip(tmp_path):
    df = pd.DataFrame({"user_id": ["a", "b"], "n": [1, 2]})
    path = save_artifact(tmp_path, "user_features", df)
    assert path.name == "user_features.parquet" and not list(tmp_path.glob("*.tmp"))
    pd.testing.assert_frame_equal(load_artifact(tmp_path, "user_features"), df)


def test_json_round_trip(tmp_path):
    save_artifact(tmp_path, "data_fingerprint", {"rows": 3, "sha256": "ab"})
    assert load_artifact(tmp_path, "data_fingerprint") == {"rows": 3, "sha256": "ab"}


def test_missing_artifact_names_producing_notebook(tmp_path):
    with pytest.raises(ArtifactError, match=r"'sessions' not found .* written by notebook 02_cleaning.ipynb"):
        load_artifact(tmp_path, "sessions")


def test_unknown_artifact_did_you_mean(tmp_path):
    with pytest.raises(ArtifactError, match=r"Unknown artifact 'session'; did you mean 'sessions'\?"):
        load_artifact(tmp_path, "session")


def test_wrong_kind_rejected(tmp_path):
    with pytest.raises(ArtifactError, match="is a table; got dict"):
        save_artifact(tmp_path, "events", {"a": 1})
    with pytest.raises(ArtifactError, match="is JSON; got DataFrame"):
        save_artifact(tmp_path, "data_fingerprint", pd.DataFrame())


def test_list_artifacts_reports_existence(tmp_path):
    save_artifact(tmp_path, "events", pd.DataFrame({"x": [1]}))
    listing = list_artifacts(tmp_path).set_index("artifact")
    assert listing.loc["events", "exists"] and not listing.loc["sessions", "exists"]
    assert len(listing) == len(ARTIFACTS)


def test_table_attrs_with_timestamps_survive_a_round_trip(tmp_path):
    # a membership table carries attrs such as its as-of time; Parquet stores attrs as JSON
    df = pd.DataFrame({"user_id": ["a"], "segment": ["s"]})
    df.attrs = {"as_of": pd.Timestamp("2024-01-01", tz="UTC"), "n_users": np.int64(3), "segments": ["s"]}
    save_artifact(tmp_path, "segment_membership", df)
    back = load_artifact(tmp_path, "segment_membership")
    assert back.attrs == {"as_of": "2024-01-01T00:00:00+00:00", "n_users": 3, "segments": ["s"]}
    assert df.attrs["as_of"] == pd.Timestamp("2024-01-01", tz="UTC")  # the input is unchanged


def test_optional_artifact_is_none_when_missing(tmp_path):
    assert load_artifact(tmp_path, "truth", optional=True) is None
    with pytest.raises(ArtifactError, match="01_event_taxonomy"):
        load_artifact(tmp_path, "truth")
