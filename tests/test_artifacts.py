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
