from pathlib import Path

import pandas as pd
import pytest

from segkit.errors import ParameterError, SchemaError
from segkit.taxonomy import (
    Taxonomy,
    apply_taxonomy,
    check_tracking_plan,
    event_catalog,
    load_taxonomy,
    unknown_events,
)

REPO = Path(__file__).resolve().parents[1]
TAX = Taxonomy.model_validate(
    {
        "events": {
            "page_view": {"category": "interaction", "aliases": ["pageview"], "requires": ["page"]},
            "search": {"category": "intent", "requires": ["search_query"]},
            "purchase": {"category": "transaction", "aliases": ["order_complete"], "requires": ["revenue"]},
        }
    }
)


def _events():
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c"],
            "event": ["pageview", "search", "order_complete", "gtm.load", "search"],
            "page": ["/", "/s", "/thanks", None, "/s"],
            "search_query": [None, "shoes", None, None, "  "],
            "revenue": [None, None, 20.0, None, None],
        }
    )


def test_apply_maps_aliases_keeps_unknown_and_every_row():
    ev = _events()
    before = ev.copy()
    out = apply_taxonomy(ev, TAX)
    pd.testing.assert_frame_equal(ev, before)
    assert len(out) == len(ev)
    assert out["event"].tolist() == ["page_view", "search", "purchase", "gtm.load", "search"]
    assert out["event_category"].tolist() == ["interaction", "intent", "transaction", "unknown", "intent"]
    assert out["raw_event"].tolist() == ev["event"].tolist()


def test_unknown_events_listed_with_counts():
    unk = unknown_events(apply_taxonomy(_events(), TAX))
    assert unk.to_dict("records") == [{"raw_event": "gtm.load", "events": 1, "users": 1}]


def test_catalog_counts_and_lists_unseen_events():
    cat = event_catalog(apply_taxonomy(_events(), TAX), TAX).set_index("event")
    assert cat.loc["search", "events"] == 2 and cat.loc["search", "users"] == 2
    assert cat.loc["page_view", "raw_names"] == "pageview"
    assert cat["share"].sum() == pytest.approx(1.0)


def test_tracking_plan_violations():
    ev = apply_taxonomy(_events(), TAX)
    v = check_tracking_plan(ev, TAX)
    rec = v.set_index(["event", "property"])
    # of two searches one has only blanks; page_view and purchase are complete
    assert rec.loc[("search", "search_query"), "violations"] == 1
    assert rec.loc[("search", "search_query"), "share"] == 0.5
    assert rec.loc[("search", "search_query"), "example_rows"] == [4]
    assert len(v) == 1


def test_tracking_plan_missing_column_counts_all_events():
    ev = apply_taxonomy(_events().drop(columns="revenue"), TAX)
    v = check_tracking_plan(ev, TAX).set_index(["event", "property"])
    assert v.loc[("purchase", "revenue"), "violations"] == 1


def test_default_taxonomy_is_valid_and_covers_brief_events():
    tax = load_taxonomy(REPO / "parameters" / "taxonomy" / "default.yaml")
    for name in ["product_image_click", "review_click", "scroll_depth_75", "wishlist_add", "deep_read", "video_play"]:
        assert name in tax.events
    assert set(tax.tracking_plan()["category"]) == {"interaction", "intent", "engagement", "transaction"}


def test_bad_category_names_allowed(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("events:\n  x:\n    category: fun\n")
    with pytest.raises(ParameterError, match=r"events.x.category.*allowed categories: \['interaction'"):
        load_taxonomy(f)


def test_requires_unknown_column_did_you_mean(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("events:\n  x:\n    category: intent\n    requires: [revenu]\n")
    with pytest.raises(ParameterError, match=r"requires 'revenu', not a canonical column; did you mean 'revenue'"):
        load_taxonomy(f)


def test_alias_owned_twice_rejected():
    with pytest.raises(Exception, match="maps to both"):
        Taxonomy.model_validate({"events": {"a": {"category": "intent", "aliases": ["z"]}, "b": {"category": "intent", "aliases": ["z"]}}})


def test_missing_file_and_missing_column(tmp_path):
    with pytest.raises(ParameterError, match="not found"):
        load_taxonomy(tmp_path / "none.yaml")
    with pytest.raises(SchemaError, match="Column 'event' not found"):
        apply_taxonomy(pd.DataFrame({"evt": ["a"]}), TAX)
