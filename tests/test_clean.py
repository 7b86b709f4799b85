from pathlib import Path

import ibis
import pandas as pd
import pytest

import segkit
from segkit.clean import clean_events
from segkit.errors import ParameterError, SchemaError
from segkit.params import CleaningParams

from conftest import require_shared

TAX = segkit.load_taxonomy(Path(__file__).resolve().parents[1] / "parameters" / "taxonomy" / "default.yaml")


def _frame():
    ts = pd.to_datetime(
        ["2024-01-01 10:00:00.000", "2024-01-01 10:00:00.000", "2024-01-01 10:00:00.400", "2024-01-01 10:05:00.000", "2024-01-01 10:06:00.000"],
        utc=True,
    )
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b"],
            "timestamp": ts,
            "event": ["page_view", "page_view", "page_view", "gtm.load", "page_view"],
            "page": ["HTTPS://Shop.example.com/product/p1/?sid=3", "HTTPS://Shop.example.com/product/p1/?sid=3",
                     "HTTPS://Shop.example.com/product/p1/?sid=3", "/", "/blog/x"],
            "page_type": [None, None, None, None, "blog"],
            "device": ["iPhone", "iPhone", "iPhone", "iPhone", None],
            "referrer": [None, None, None, None, "https://google.com/"],
        }
    ).pipe(lambda df: segkit.apply_taxonomy(df, TAX))


def test_each_step_counted_and_balanced():
    ev = _frame()
    before = ev.copy()
    res = clean_events(ev)
    pd.testing.assert_frame_equal(ev, before)
    ledger = res.ledger.set_index(["step", "reason"])["rows"]
    assert ledger[("taxonomy", "unknown_event")] == 1
    assert ledger[("duplicates", "exact_duplicate")] == 1
    assert ledger[("duplicates", "near_duplicate")] == 1
    assert ledger[("page_types", "filled_from_url")] == 1
    assert ledger[("missing", "fill_referrer")] == 1
    assert (res.rows_in, res.rows_out, res.rows_dropped) == (5, 2, 3)
    assert res.events["page"].tolist() == ["https://shop.example.com/product/p1", "/blog/x"]
    assert res.events["device"].tolist()[0] == "Mobile"
    assert res.events["referrer"].tolist()[0] == "(direct)"


def test_quarantine_keeps_dropped_rows_with_reasons():
    res = clean_events(_frame())
    q = res.quarantine
    assert len(q) == res.rows_dropped
    assert set(q["step"]) == {"taxonomy", "duplicates"}
    assert q.loc[q["step"] == "taxonomy", "detail"].tolist() == ["gtm.load"]
    assert {"user_id", "timestamp", "event"} <= set(q.columns)


def test_reader_rejections_start_the_ledger():
    rej = pd.DataFrame({"row": [7], "reason": ["unparseable_timestamp"], "raw": ["{...}"]})
    res = clean_events(_frame(), rejected=rej)
    assert res.rows_in == 6 and res.ledger.iloc[0].to_dict() == {
        "step": "read", "action": "dropped", "reason": "unparseable_timestamp", "rows": 1}
    assert res.waterfall()["remaining"].iloc[-1] == res.rows_out


def test_keep_unknown_events_when_asked():
    res = clean_events(_frame(), {"drop_unknown_events": False})
    assert "gtm.load" in res.events["event"].tolist()


def test_drop_policy_quarantines_rows():
    res = clean_events(_frame(), {"missing": {"referrer": "drop"}})
    assert res.ledger.set_index("reason").loc["missing_referrer", "rows"] == 1
    assert res.quarantine.query("step == 'missing'")["reason"].tolist() == ["missing_referrer"]


def test_bad_parameters_and_columns():
    with pytest.raises(ParameterError, match="cleaning"):
        clean_events(_frame(), {"dedup_tolerance": "1800"})
    with pytest.raises(ParameterError, match="drop_unknown_event"):
        clean_events(_frame(), {"drop_unknown_event": True})
    with pytest.raises(SchemaError, match="'user_id' not found"):
        clean_events(_frame().drop(columns="user_id"))
    with pytest.raises(ParameterError, match="output"):
        clean_events(_frame(), output="polars")
    with pytest.raises(SchemaError, match="colour"):
        clean_events(_frame(), {"missing": {"colour": "mode"}})


@pytest.fixture(scope="module")
def shop_clean():
    shop = segkit.simulate_shop(1500, seed=3)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    events = segkit.apply_taxonomy(loaded.events, TAX)
    return shop, loaded, clean_events(events, CleaningParams(), rejected=loaded.rejected)


def test_simulated_shop_ledger_balances_and_bots_scored(shop_clean):
    shop, loaded, res = shop_clean
    assert res.rows_in == loaded.n_input == len(shop.events)
    assert res.rows_in == res.rows_out + len(res.quarantine)
    truth = shop.truth.set_index("user_id")["is_bot"]
    flags = res.bots.set_index("user_id")["is_bot"].reindex(truth.index, fill_value=False)
    score = segkit.bots.score_bots(flags, truth)
    assert score["precision"] >= 0.95 and score["recall"] >= 0.90
    assert set(res.events["device"].dropna()) <= {"Mobile", "Desktop", "Tablet", "Bot", "Other"}


def test_apache_log_ledger_balances():
    path = require_shared("apache_access_10k", "apache_logs")
    loaded = segkit.load_events(path, format="access_log")
    events = segkit.apply_taxonomy(loaded.events, TAX)
    res = clean_events(events, rejected=loaded.rejected)
    assert res.rows_in == 10_000 == res.rows_out + res.rows_dropped
    dup = res.ledger.query("reason == 'exact_duplicate'")["rows"].sum()
    assert dup >= 1  # the log's exact duplicate lines (some belong to bots, dropped earlier)


def test_all_null_user_ids_rejected_with_hint():
    ev = _frame().assign(user_id=pd.Series([None] * 5, dtype="string"))
    with pytest.raises(SchemaError, match=r"'user_id' is null in all rows; load_events quarantines"):
        clean_events(ev)


def test_unparsed_timestamp_column_rejected():
    ev = _frame().assign(timestamp=["2024-01-01T10:00:00Z", "yesterday", "x", "y", "z"])
    with pytest.raises(SchemaError, match=r"'timestamp' has type string, not parsed timestamps; read the events with"):
        clean_events(ev)


def test_unknown_policy_did_you_mean():
    with pytest.raises(ParameterError, match=r"median"):
        clean_events(_frame(), {"missing": {"referrer": "medain"}})


def test_parquet_input_and_ibis_output(tmp_path):
    path = tmp_path / "events.parquet"
    _frame().to_parquet(path)
    res = clean_events(str(path), output="ibis")
    assert res.rows_out == 2 and res.events.count().execute() == 2
    assert int(res.quarantine.count().execute()) == res.rows_dropped


def test_lookup_hash_collisions_fall_back_to_joining_on_the_keys(shop_clean, monkeypatch):
    import segkit.clean as clean_mod

    _, loaded, res = shop_clean
    events = segkit.apply_taxonomy(loaded.events, TAX)
    monkeypatch.setattr(clean_mod, "_key_hash", lambda t, values: ibis.literal(7, "uint64"))  # every key collides
    again = clean_events(events, CleaningParams(), rejected=loaded.rejected)
    pd.testing.assert_frame_equal(again.events, res.events)
    pd.testing.assert_frame_equal(again.ledger, res.ledger)
