"""The index page's headline section, written from a run's artifacts."""
from __future__ import annotations

import pandas as pd

from segkit.artifacts import save_artifact
from segkit.stakeholder import stakeholder_summary


def test_summary_states_the_numbers_of_the_artifacts_that_exist(tmp_path):
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    save_artifact(tmp_path, "ledger", pd.DataFrame({"step": ["bots", "duplicates"], "action": ["dropped", "dropped"],
                                                    "reason": ["bot_ua", "exact"], "rows": [30, 5]}))
    save_artifact(tmp_path, "user_features", pd.DataFrame({"user_id": ["a", "b", "c", "d"]}))
    save_artifact(tmp_path, "segment_membership", pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "<y>"],
                                                                "entered_at": [ts] * 3, "reason": ["r"] * 3}))
    save_artifact(tmp_path, "intent_metrics", {"model": "logistic", "roc_auc": 0.81, "pr_auc": 0.2, "base_rate": 0.05,
                                               "top_decile_lift": 3.1, "label": "purchase within 7d"})
    html = stakeholder_summary(tmp_path)
    assert "4 visitors analysed after cleaning; 35 raw rows were set aside (bots: 30, duplicates: 5)" in html
    assert "the largest, x, holds 50% of visitors" in html
    assert "&lt;y&gt;" in html and "<y>" not in html  # names are escaped
    assert "ROC-AUC 0.81" in html and "3.1 times as often" in html
    assert "Alerts" not in html and "clusters" not in html  # sections without artifacts are left out
    assert 'src="data:image/png;base64,' in html


def test_summary_of_an_empty_run_is_none(tmp_path):
    assert stakeholder_summary(tmp_path) is None
