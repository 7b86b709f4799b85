from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared

from segkit.errors import ParameterError, SchemaError, SegkitError
from segkit.io import DataQualityWarning, LoadedEvents, load_events, read_events

T0 = "2024-03-01T12:00:00Z"


def frame(**cols) -> pd.DataFrame:
    n = max(len(v) for v in cols.values())
    base = {"user_id": ["u1"] * n, "event": ["page_view"] * n, "timestamp": [T0] * n}
    base.update(cols)
    return pd.DataFrame(base)


def check_invariant(loaded: LoadedEvents) -> None:
    assert loaded.n_input == len(loaded.events) + len(loaded.rejected)
    assert loaded.rejected.columns.tolist() == ["row", "reason", "raw"]


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- DataFrame sources


def test_canonical_frame_loads_with_canonical_dtypes():
    raw = frame(user_id=[7, 8], price=["1.5", None], status=["200", "404"], page=["/a", "/b"])
    loaded = load_events(raw)
    ev = loaded.events
    check_invariant(loaded)
    assert loaded.source == "<DataFrame>" and loaded.n_input == 2 and len(loaded.rejected) == 0
    assert ev["user_id"].tolist() == ["7", "8"]
    assert str(ev["timestamp"].dtype) == "datetime64[us, UTC]"
    assert ev["price"].dtype == "float64" and str(ev["status"].dtype) == "Int64"
    assert ev.index.equals(pd.RangeIndex(2))


def test_integral_float_ids_lose_the_trailing_zero():
    loaded = load_events(frame(user_id=[7.0, np.nan, 9.0]))
    assert loaded.events["user_id"].tolist() == ["7", "9"]


def test_input_frame_is_not_modified():
    raw = frame(user_id=["u1", None], visitor=["a", "b"], timestamp=["2024-03-01 12:00", "junk"])
    before = raw.copy()
    load_events(raw, columns={"visitor": "session_id"}, timezone="Europe/Berlin")
    pd.testing.assert_frame_equal(raw, before)


def test_extra_columns_are_kept_after_canonical_ones():
    raw = pd.DataFrame({"utm": ["ads"], "event": ["page_view"], "user_id": ["u1"], "timestamp": [T0], "page": ["/"]})
    ev = load_events(raw).events
    assert ev.columns.tolist() == ["user_id", "timestamp", "event", "page", "utm"]
    assert ev["utm"].tolist() == ["ads"]


def test_naive_timestamps_use_timezone():
    ev = load_events(frame(timestamp=["2024-03-01 13:00"]), timezone="Europe/Berlin").events
    assert ev["timestamp"].iloc[0] == pd.Timestamp(T0)


def test_dict_properties_become_json_text():
    ev = load_events(frame(properties=[{"brand": "acme", "n": 1}, None])).events
    assert json.loads(ev["properties"].iloc[0]) == {"brand": "acme", "n": 1}
    assert pd.isna(ev["properties"].iloc[1])


# ----------------------------------------------------------------------------- rejection


def test_rows_are_rejected_with_reasons_and_raw_json():
    raw = pd.DataFrame(
        {
            "user_id": ["u1", None, "  ", "u4", "u5", "u6", "u7", "u8", "u9"],
            "event": ["page_view", "page_view", "page_view", "", "page_view", "page_view", "page_view", "page_view", "x"],
            "timestamp": [T0, T0, T0, T0, None, "not-a-date", T0, T0, T0],
            "price": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, "abc", 1.0, 1.0],
            "scroll_depth": [10, 10, 10, 10, 10, 10, 10, 150, 10],
        }
    )
    loaded = load_events(raw)
    check_invariant(loaded)
    assert loaded.rejected["row"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert loaded.rejected["reason"].tolist() == [
        "missing_user_id",
        "missing_user_id",
        "missing_event",
        "missing_timestamp",
        "unparseable_timestamp",
        "invalid_price",
        "invalid_scroll_depth",
    ]
    assert json.loads(loaded.rejected["raw"].iloc[4]) == {
        "user_id": "u6", "event": "page_view", "timestamp": "not-a-date", "price": 1.0, "scroll_depth": 10
    }
    assert loaded.events["user_id"].tolist() == ["u1", "u9"]
    assert loaded.reason_counts.to_dict()["missing_user_id"] == 2


def test_first_applicable_reason_wins():
    loaded = load_events(frame(user_id=[None], event=[None], timestamp=["junk"]))
    assert loaded.rejected["reason"].tolist() == ["missing_user_id"]


def test_non_integer_status_is_invalid():
    loaded = load_events(frame(status=[200, 3.5]))
    assert loaded.rejected["reason"].tolist() == ["invalid_status"]


def test_everything_rejected_still_gives_a_valid_empty_log():
    loaded = load_events(frame(timestamp=["junk", "junk"]))
    check_invariant(loaded)
    assert len(loaded.events) == 0
    assert str(loaded.events["timestamp"].dtype) == "datetime64[us, UTC]"


def test_loaded_events_is_frozen():
    loaded = load_events(frame(page=["/"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.n_input = 3


# ----------------------------------------------------------------------------- columns=


def test_columns_renames_source_columns():
    raw = pd.DataFrame({"visitor_id": [1], "action": ["page_view"], "event_time": ["1709294400"]})
    ev = load_events(raw, columns={"visitor_id": "user_id", "action": "event", "event_time": "timestamp"}).events
    assert ev.columns.tolist() == ["user_id", "timestamp", "event"]
    assert ev["timestamp"].iloc[0] == pd.Timestamp(T0)


def test_columns_unknown_source_column_is_schema_error_with_hint():
    raw = pd.DataFrame({"visitor_id": [1], "event": ["e"], "timestamp": [T0]})
    with pytest.raises(SchemaError, match=r"Column 'visitorid' given in columns= not found.*did you mean 'visitor_id'") as info:
        load_events(raw, columns={"visitorid": "user_id"})
    assert info.value.columns == ["visitorid"]


def test_columns_non_canonical_target_is_parameter_error_with_hint():
    raw = pd.DataFrame({"visitor_id": [1], "event": ["e"], "timestamp": [T0]})
    with pytest.raises(ParameterError, match=r"maps 'visitor_id' to 'user', which is not a canonical column; did you mean 'user_id'"):
        load_events(raw, columns={"visitor_id": "user"})


def test_columns_duplicate_targets_are_rejected():
    raw = pd.DataFrame({"a": [1], "b": [2], "event": ["e"], "timestamp": [T0]})
    with pytest.raises(ParameterError, match=r"maps several source columns to \['user_id'\]"):
        load_events(raw, columns={"a": "user_id", "b": "user_id"})


def test_columns_target_colliding_with_existing_column_is_rejected():
    raw = frame(visitor=["v"])
    with pytest.raises(ParameterError, match="already has a 'user_id' column"):
        load_events(raw, columns={"visitor": "user_id"})


def test_columns_may_swap_names():
    raw = frame(session_id=["s1"])
    ev = load_events(raw, columns={"user_id": "session_id", "session_id": "user_id"}).events
    assert ev[["user_id", "session_id"]].iloc[0].tolist() == ["s1", "u1"]


def test_columns_must_be_a_mapping():
    with pytest.raises(ParameterError, match="'columns' got"):
        load_events(frame(page=["/"]), columns=["user_id"])


def test_columns_do_not_apply_to_adapters(tmp_path):
    with pytest.raises(ParameterError, match="does not apply to format='rees46'"):
        load_events(pd.DataFrame(), format="rees46", columns={"a": "user_id"})


def test_missing_required_columns_are_named_with_hint():
    raw = pd.DataFrame({"userid": ["u"], "event": ["e"], "time": [T0]})
    with pytest.raises(SchemaError, match=r"'user_id' not found.*did you mean 'userid'") as info:
        load_events(raw)
    assert info.value.columns == ["user_id", "timestamp"]


# ----------------------------------------------------------------------------- files: generic


def test_csv_keeps_id_strings_exact(tmp_path):
    path = write(tmp_path / "ev.csv", "user_id,event,timestamp,item_id,price\n007,page_view,2024-03-01T12:00:00Z,0042,1.5\n")
    loaded = load_events(path)
    check_invariant(loaded)
    assert loaded.source == str(path)
    assert loaded.events[["user_id", "item_id"]].iloc[0].tolist() == ["007", "0042"]
    assert loaded.events["price"].iloc[0] == 1.5


def test_csv_with_mapping_and_rejected_row_numbers(tmp_path):
    path = write(tmp_path / "ev.csv", "vid,what,ts\n1,page_view,1709294400\n2,page_view,junk\n,page_view,1709294400\n")
    loaded = load_events(str(path), columns={"vid": "user_id", "what": "event", "ts": "timestamp"})
    check_invariant(loaded)
    assert loaded.rejected[["row", "reason"]].values.tolist() == [[1, "unparseable_timestamp"], [2, "missing_user_id"]]
    assert json.loads(loaded.rejected["raw"].iloc[0]) == {"vid": "2", "what": "page_view", "ts": "junk"}


def test_tsv_and_gzip_are_inferred(tmp_path):
    text = "user_id\tevent\ttimestamp\nu1\tpage_view\t2024-03-01T12:00:00Z\n"
    tsv = write(tmp_path / "ev.tsv", text)
    gz = tmp_path / "ev.tsv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert len(load_events(tsv).events) == 1
    assert len(load_events(gz).events) == 1


def test_csv_read_kwargs_pass_through(tmp_path):
    path = write(tmp_path / "ev.csv", "user_id;event;timestamp\nu1;page_view;2024-03-01T12:00:00Z\n")
    assert len(load_events(path, sep=";").events) == 1


def test_unknown_read_kwarg_is_parameter_error(tmp_path):
    path = write(tmp_path / "ev.csv", "user_id,event,timestamp\nu1,e,2024-03-01\n")
    with pytest.raises(ParameterError, match="Bad read option for csv"):
        load_events(path, no_such_option=1)


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "ev.parquet"
    frame(user_id=[1, 2], price=[1.0, 2.0]).to_parquet(path)
    loaded = load_events(path)
    check_invariant(loaded)
    assert loaded.events["user_id"].tolist() == ["1", "2"]


def test_parquet_directory_dataset(tmp_path):
    (tmp_path / "ds").mkdir()
    frame(page=["/a"]).to_parquet(tmp_path / "ds" / "part-0.parquet")
    assert len(load_events(tmp_path / "ds", format="parquet").events) == 1


def test_jsonl_malformed_and_blank_lines(tmp_path):
    lines = [
        json.dumps({"user_id": "u1", "event": "page_view", "timestamp": T0, "properties": {"a": 1}}),
        "",
        "{not json",
        "[1, 2]",
        json.dumps({"user_id": "u2", "event": "page_view", "timestamp": "junk"}),
    ]
    path = write(tmp_path / "ev.jsonl", "\n".join(lines) + "\n")
    loaded = load_events(path)
    check_invariant(loaded)
    assert loaded.n_input == 4  # the blank line is skipped and not counted
    assert loaded.rejected[["row", "reason"]].values.tolist() == [
        [2, "malformed_line"], [3, "malformed_line"], [4, "unparseable_timestamp"]
    ]
    assert loaded.rejected["raw"].tolist()[:2] == ["{not json", "[1, 2]"]
    assert json.loads(loaded.events["properties"].iloc[0]) == {"a": 1}


def test_json_array_file(tmp_path):
    path = write(tmp_path / "ev.json", json.dumps([{"user_id": "u1", "event": "e", "timestamp": T0}]))
    assert load_events(path).events["user_id"].tolist() == ["u1"]


def test_json_array_that_is_broken_is_segkit_error(tmp_path):
    path = write(tmp_path / "ev.json", '[{"user_id": "u1"')
    with pytest.raises(SegkitError, match="as a JSON array"):
        load_events(path)


def test_jsonl_line_with_invalid_utf8_is_malformed(tmp_path):
    good = json.dumps({"user_id": "u1", "event": "e", "timestamp": T0}).encode()
    path = tmp_path / "ev.jsonl"
    path.write_bytes(good + b"\n" + b'{"user_id": "\xff"}' + b"\n")
    loaded = load_events(path)
    assert loaded.rejected[["row", "reason"]].values.tolist() == [[1, "malformed_line"]]
    assert loaded.rejected["raw"].iloc[0] == '{"user_id": "\\xff"}'


def test_access_log_encoding_option(tmp_path):
    path = tmp_path / "latin.log"
    path.write_bytes('1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /caf\xe9 HTTP/1.1" 200 1 "-" "ua"\n'.encode("latin-1"))
    assert load_events(path, encoding="latin-1").events["page"].tolist() == ["/caf\xe9"]
    assert load_events(path).events["page"].tolist() == ["/caf\\xe9"]  # undecodable bytes kept as escapes


# ----------------------------------------------------------------------------- file errors


def test_missing_path_names_the_path(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(SegkitError, match=r"Event file not found: '.*nope\.csv'"):
        load_events(path)


def test_unknown_suffix_lists_allowed_formats(tmp_path):
    path = write(tmp_path / "events.xlsx", "x")
    with pytest.raises(ParameterError, match=r"Cannot infer the format of .*'\.xlsx'.*'csv', 'parquet', 'jsonl'"):
        load_events(path)


def test_unknown_format_name_has_hint(tmp_path):
    with pytest.raises(ParameterError, match=r"'format' got 'parquett'.*did you mean 'parquet'"):
        load_events(tmp_path / "x", format="parquett")


def test_unreadable_parquet_is_segkit_error(tmp_path):
    path = write(tmp_path / "ev.parquet", "this is not parquet")
    with pytest.raises(SegkitError, match=r"Could not read .*ev\.parquet.* as parquet"):
        load_events(path)


def test_binary_garbage_csv_is_segkit_error(tmp_path):
    path = tmp_path / "ev.csv"
    path.write_bytes(b"user_id,event,timestamp\n\xff\xfe\x00\x81,\x9c,\xc3\n")
    with pytest.raises(SegkitError, match=r"Could not read .*ev\.csv.* as csv"):
        load_events(path)


def test_missing_path_without_suffix_is_not_found_error(tmp_path):
    with pytest.raises(SegkitError, match="Event file not found"):
        load_events(tmp_path / "apache_logs")


def test_directory_is_only_for_parquet(tmp_path):
    with pytest.raises(SegkitError, match="is a directory"):
        load_events(tmp_path, format="csv")


def test_bad_source_type():
    with pytest.raises(ParameterError, match="'source' got 'int'"):
        load_events(42)


def test_dataframe_with_file_format_or_read_options():
    with pytest.raises(ParameterError, match="the source is a DataFrame"):
        load_events(frame(page=["/"]), format="csv")
    with pytest.raises(ParameterError, match="'sep' applies to files only"):
        load_events(frame(page=["/"]), sep=";")


def test_line_formats_accept_only_encoding(tmp_path):
    path = write(tmp_path / "x.log", "")
    path.write_text("junk\n")
    with pytest.raises(ParameterError, match="'sep' is not supported for format 'access_log'"):
        load_events(path, sep=" ")


@pytest.mark.parametrize(("name", "fmt"), [("e.csv", None), ("e.jsonl", None), ("e.log", None), ("e.parquet", None), ("e.csv", "rees46"), ("e.jsonl", "otto"),
                                          ("e.txt", "yoochoose"), ("e.csv", "diginetica")])
def test_zero_byte_file_gives_empty_events(tmp_path, name, fmt):
    path = write(tmp_path / name, "")
    loaded = load_events(path, format=fmt)
    check_invariant(loaded)
    assert loaded.n_input == 0 and len(loaded.events) == 0
    assert loaded.events.columns.tolist() == ["user_id", "timestamp", "event"]


def test_header_only_csv_gives_empty_events(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,event,timestamp,page\n")
    loaded = load_events(path)
    assert loaded.n_input == 0 and loaded.events.columns.tolist() == ["user_id", "timestamp", "event", "page"]


def test_header_only_csv_missing_columns_is_schema_error(tmp_path):
    path = write(tmp_path / "e.csv", "user,event,timestamp\n")
    with pytest.raises(SchemaError, match="did you mean 'user'"):
        load_events(path)


# ----------------------------------------------------------------------------- read_events


def test_read_events_warns_with_counts_by_reason():
    with pytest.warns(DataQualityWarning, match=r"Rejected 2 of 3 input rows .*missing_user_id=1, unparseable_timestamp=1"):
        ev = read_events(frame(user_id=["u1", None, "u3"], timestamp=[T0, T0, "junk"]))
    assert ev["user_id"].tolist() == ["u1"]


def test_read_events_is_silent_when_clean():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_events(frame(page=["/"]))) == 1


def test_read_events_warns_on_empty_source(tmp_path):
    with pytest.warns(DataQualityWarning, match="No events"):
        read_events(write(tmp_path / "e.jsonl", ""))


# ----------------------------------------------------------------------------- REES46 adapter

REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"


def test_rees46_mapping(tmp_path):
    path = write(
        tmp_path / "rees.csv",
        REES46_HEADER
        + "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1\n"
        + "2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,appliances.water_heater,aqua,33.20,541312140,s1\n"
        + "2019-10-01 00:00:09 UTC,purchase,3900821,2053013552326770905,appliances.water_heater,,33.20,541312140,s1\n"
        + "2019-10-01 00:00:10 UTC,remove_from_cart,1,2,,,1.0,541312140,s1\n",
    )
    loaded = load_events(path, format="rees46")
    ev = loaded.events
    check_invariant(loaded)
    assert ev["event"].tolist() == ["page_view", "add_to_cart", "purchase", "remove_from_cart"]
    assert ev["raw_event"].tolist() == ["view", "cart", "purchase", "remove_from_cart"]
    assert ev["page_type"].tolist()[:2] == ["product", pd.NA]
    assert ev["category"].tolist()[:2] == ["2103807459595387724", "appliances.water_heater"]
    assert ev["revenue"].isna().tolist() == [True, True, False, True] and ev["revenue"].iloc[2] == 33.2
    assert ev["session_id"].eq("s1").all() and ev["item_id"].iloc[0] == "44600062"
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2019-10-01", tz="UTC")
    assert json.loads(ev["properties"].iloc[0]) == {"brand": "shiseido", "category_id": "2103807459595387724"}
    assert json.loads(ev["properties"].iloc[2])["brand"] is None


def test_rees46_dataframe_source_and_bad_rows():
    raw = pd.DataFrame(
        {"event_time": ["2019-10-01 00:00:00 UTC", "bad"], "event_type": ["view", "view"], "user_id": [1, 2], "extra": ["x", "y"]}
    )
    loaded = load_events(raw, format="rees46")
    check_invariant(loaded)
    assert loaded.rejected["reason"].tolist() == ["unparseable_timestamp"]
    assert loaded.events["extra"].tolist() == ["x"]


def test_rees46_missing_source_columns_are_named():
    with pytest.raises(SchemaError, match=r"'event_type' not found in REES46 source; did you mean 'event_typ'"):
        load_events(pd.DataFrame({"event_time": [], "event_typ": [], "user_id": []}), format="rees46")


# ----------------------------------------------------------------------------- OTTO adapter


def test_otto_jsonl_with_malformed_lines(tmp_path):
    lines = [
        json.dumps({"session": 5, "events": [{"aid": 1, "ts": 1661724000278, "type": "clicks"}, {"aid": 2, "ts": 1661724000999, "type": "carts"}]}),
        '{"session": 6, "events": [',
        json.dumps({"session": 7, "events": "nope"}),
        json.dumps({"session": 8, "events": [{"aid": 3, "type": "orders"}, {"aid": 4, "ts": 1661724001000, "type": "orders"}]}),
    ]
    path = write(tmp_path / "otto.jsonl", "\n".join(lines))
    loaded = load_events(path, format="otto")
    check_invariant(loaded)
    assert loaded.n_input == 6  # 4 events in good lines + 2 malformed lines
    assert loaded.rejected[["row", "reason"]].values.tolist() == [[1, "malformed_line"], [2, "malformed_line"], [3, "missing_timestamp"]]
    assert json.loads(loaded.rejected["raw"].iloc[2]) == {"session": 8, "aid": 3, "type": "orders"}
    ev = loaded.events
    assert ev["event"].tolist() == ["page_view", "add_to_cart", "purchase"]
    assert ev["user_id"].tolist() == ["5", "5", "8"] and ev["session_id"].equals(ev["user_id"])
    assert ev["item_id"].tolist() == ["1", "2", "4"]
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2022-08-28 22:00:00.278", tz="UTC")
    assert ev["page_type"].tolist()[0] == "product"


def test_otto_flat_frame():
    raw = pd.DataFrame({"session": [1, 1], "aid": [10, 11], "ts": [1661724000, 1661724060], "type": ["clicks", "orders"]})
    ev = load_events(raw, format="otto").events
    assert ev["event"].tolist() == ["page_view", "purchase"]
    assert ev["timestamp"].iloc[1] == pd.Timestamp("2022-08-28 22:01:00", tz="UTC")  # seconds detected


# ----------------------------------------------------------------------------- YooChoose adapter

YOO_PREPARED = (
    "SessionId\tItemId\tTime\n"
    "3\t214716935\t1396437466.94\n"
    "3\t214832672\tnot-a-time\n"
    "\t214832672\t1396438212.318\n"
    "6\t214701242\t\n"
    "6\t214826623\t1396796546\n"
)
YOO_ORIGINAL = (
    "1,2014-04-07T10:51:09.277Z,214536502,0\n"
    "1,2014-04-07T10:54:09.868Z,214536500,S\n"
    "2,2014-04-07T13:56:37.614Z,214662742,2053013552\n"
    "2,2014-13-07T13:57:19.373Z,214662742,3\n"
    ",2014-04-07T13:58:19.373Z,214662742,3\n"
)


def test_yoochoose_prepared_layout(tmp_path):
    loaded = load_events(write(tmp_path / "clicks.txt", YOO_PREPARED), format="yoochoose")
    check_invariant(loaded)
    ev = loaded.events
    assert ev.columns.tolist() == ["user_id", "timestamp", "event", "session_id", "item_id"]
    assert ev["user_id"].tolist() == ["3", "6"] and ev["session_id"].equals(ev["user_id"])
    assert ev["event"].eq("product_click").all() and ev["item_id"].tolist() == ["214716935", "214826623"]
    assert ev["timestamp"].tolist() == [pd.Timestamp("2014-04-02 11:17:46.940", tz="UTC"), pd.Timestamp("2014-04-06 15:02:26", tz="UTC")]


def test_yoochoose_bad_rows_are_rejected_with_reasons(tmp_path):
    loaded = load_events(write(tmp_path / "clicks.txt", YOO_PREPARED), format="yoochoose")
    assert loaded.rejected[["row", "reason"]].values.tolist() == [
        [1, "unparseable_timestamp"],
        [2, "missing_user_id"],
        [3, "missing_timestamp"],
    ]
    assert json.loads(loaded.rejected["raw"].iloc[0]) == {"SessionId": "3", "ItemId": "214832672", "Time": "not-a-time"}


def test_yoochoose_original_layout_without_header(tmp_path):
    loaded = load_events(write(tmp_path / "yoochoose-clicks.dat", YOO_ORIGINAL), format="yoochoose")
    check_invariant(loaded)
    ev = loaded.events
    assert ev["user_id"].tolist() == ["1", "1", "2"] and ev["session_id"].equals(ev["user_id"])
    assert ev["event"].eq("product_click").all() and ev["item_id"].iloc[0] == "214536502"
    assert ev["category"].tolist() == [pd.NA, "S", "2053013552"]  # "0" means missing in RecSys 2015
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2014-04-07 10:51:09.277", tz="UTC")
    assert loaded.rejected[["row", "reason"]].values.tolist() == [[3, "unparseable_timestamp"], [4, "missing_user_id"]]


def test_yoochoose_gzip_and_header_inference(tmp_path):
    path = tmp_path / "clicks.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(YOO_PREPARED)
    loaded = load_events(path)  # no format: the session-rec header says yoochoose
    assert len(loaded.events) == 2 and loaded.events["event"].eq("product_click").all()
    with pytest.raises(ParameterError, match="Cannot infer the format"):
        load_events(write(tmp_path / "clicks.dat", YOO_ORIGINAL))  # no header to go by


def test_yoochoose_dataframe_source_does_not_modify_input():
    raw = pd.DataFrame({"session": [7, 7], "timestamp": ["2014-04-07T10:51:09Z", "2014-04-07T10:52:09Z"], "item": [1, 2],
                        "category": ["0", "5"], "extra": ["a", "b"]})
    before = raw.copy()
    ev = load_events(raw, format="yoochoose").events
    pd.testing.assert_frame_equal(raw, before)
    assert ev["user_id"].tolist() == ["7", "7"] and ev["item_id"].tolist() == ["1", "2"]
    assert ev["category"].tolist() == [pd.NA, "5"] and ev["extra"].tolist() == ["a", "b"]


def test_yoochoose_unrecognised_first_line_names_both_layouts(tmp_path):
    path = write(tmp_path / "buys.dat", "420374,2014-04-06T18:44:58.314Z,214537888,12462,1\n")
    with pytest.raises(SegkitError, match=r"matches neither the session-rec layout .* nor the RecSys 2015 clicks layout"):
        load_events(path, format="yoochoose")


def test_yoochoose_missing_columns_are_named():
    with pytest.raises(SchemaError, match=r"'ItemId' not found in YooChoose source .*did you mean 'ItemID'"):
        load_events(pd.DataFrame({"SessionId": [1], "ItemID": [2], "Time": [3]}), format="yoochoose")


def test_yoochoose_takes_no_columns_mapping():
    with pytest.raises(ParameterError, match="does not apply to format='yoochoose'"):
        load_events(pd.DataFrame(), format="yoochoose", columns={"a": "user_id"})


# ----------------------------------------------------------------------------- DIGINETICA adapter

DIGI = (
    "sessionId;userId;itemId;timeframe;eventdate\n"
    "1;NA;81766;526309;2016-05-09\n"
    "1;;31331;1031018;2016-05-09\n"
    "2;5;9654;75848;2016-05-10\n"
    "2;5;9654;x;2016-05-10\n"
    "2;5;9654;1;09.05.2016\n"
    "2;5;9654;;2016-05-10\n"
    ";;1;2;2016-05-10\n"
    "3;NA;1;-5;2016-05-10\n"
)


def test_diginetica_mapping(tmp_path):
    loaded = load_events(write(tmp_path / "train-item-views.csv", DIGI), format="diginetica")
    check_invariant(loaded)
    ev = loaded.events
    assert ev["user_id"].tolist() == ["session:1", "session:1", "5"]  # anonymous session = its own visitor
    assert ev["session_id"].tolist() == ["1", "1", "2"] and ev["item_id"].tolist() == ["81766", "31331", "9654"]
    assert ev["event"].eq("page_view").all() and ev["page_type"].eq("product").all()
    assert ev["timestamp"].tolist() == [
        pd.Timestamp("2016-05-09 00:08:46.309", tz="UTC"),  # midnight of eventdate + timeframe ms
        pd.Timestamp("2016-05-09 00:17:11.018", tz="UTC"),
        pd.Timestamp("2016-05-10 00:01:15.848", tz="UTC"),
    ]


def test_diginetica_bad_rows_are_rejected_with_reasons(tmp_path):
    loaded = load_events(write(tmp_path / "train-item-views.csv", DIGI), format="diginetica")
    assert loaded.rejected[["row", "reason"]].values.tolist() == [
        [3, "unparseable_timestamp"],
        [4, "unparseable_timestamp"],
        [5, "missing_timestamp"],
        [6, "missing_user_id"],
        [7, "unparseable_timestamp"],
    ]
    assert json.loads(loaded.rejected["raw"].iloc[0])["timeframe"] == "x"


def test_diginetica_snake_case_header_and_naive_dates_use_timezone(tmp_path):
    text = "session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;0;2016-05-09\n"
    path = write(tmp_path / "sample.txt", text)
    ev = load_events(path, timezone="Europe/Berlin").events  # header inferred
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2016-05-08 22:00", tz="UTC")


def test_diginetica_dataframe_without_user_column():
    raw = pd.DataFrame({"sessionId": [4], "itemId": [9], "timeframe": [1500], "eventdate": ["2016-01-03"]})
    ev = load_events(raw, format="diginetica").events
    assert ev["user_id"].tolist() == ["session:4"]
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2016-01-03 00:00:01.5", tz="UTC")


def test_diginetica_missing_columns_are_named():
    with pytest.raises(SchemaError, match=r"'timeframe' not found in DIGINETICA source"):
        load_events(pd.DataFrame({"sessionId": [1], "eventdate": ["2016-01-03"]}), format="diginetica")


# ----------------------------------------------------------------------------- access-log adapter

UA = "Mozilla/5.0 (X11; Linux x86_64)"
LOG_LINES = [
    f'1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /blog/post?id=7 HTTP/1.1" 200 5120 "http://ref.example/" "{UA}"',
    f'1.2.3.4 - - [17/May/2015:10:05:04 +0000] "GET /static/site.CSS HTTP/1.1" 304 - "-" "{UA}"',
    'this is not a log line',
    '5.6.7.8 - frank [17/May/2015:12:05:05 +0200] "POST /login HTTP/1.0" 302 0',
    r'9.9.9.9 - - [17/May/2015:10:05:06 +0000] "GET / HTTP/1.1" 200 10 "-" "Agent \"quoted\" 1.0"',
    '9.9.9.9 - - [17/May/2015:10:05:07 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',
    '8.8.8.8 - - [17/May/2015:10:05:08 +0000] "GET /cut HTTP/1.1" 200 1 "-" "Mozilla/5.0 (compatible; Googlebot/2.1',
    '8.8.8.8 - - [17/May/2015:10:05:09 +0000] "GET /cut HTTP/1.1" 200 1 "http://cut.example',
    '',
]


def load_log(tmp_path, lines=LOG_LINES) -> LoadedEvents:
    return load_events(write(tmp_path / "access.log", "\n".join(lines) + "\n"))


def test_access_log_fields(tmp_path):
    loaded = load_log(tmp_path)
    check_invariant(loaded)
    ev = loaded.events
    assert loaded.n_input == 8  # the trailing blank line is not counted
    assert ev["event"].tolist() == ["page_view", "asset_request", "page_view", "page_view", "bad_request", "page_view"]
    first = ev.iloc[0]
    assert first["page"] == "/blog/post" and first["query"] == "id=7" and first["method"] == "GET"
    assert first["status"] == 200 and first["bytes"] == 5120 and first["referrer"] == "http://ref.example/"
    assert first["ip"] == "1.2.3.4" and first["user_agent"] == UA
    assert first["timestamp"] == pd.Timestamp("2015-05-17 10:05:03", tz="UTC")
    assert first["user_id"] == hashlib.sha1(f"1.2.3.4|{UA}".encode()).hexdigest()[:16]
    assert ev["user_id"].iloc[1] == first["user_id"]
    assert str(ev["status"].dtype) == "Int64" and str(ev["bytes"].dtype) == "Int64"
    assert pd.isna(ev["bytes"].iloc[1]) and pd.isna(ev["referrer"].iloc[1])


def test_access_log_common_format_escaped_quotes_and_bad_request(tmp_path):
    ev = load_log(tmp_path).events
    common = ev.iloc[2]
    assert common["method"] == "POST" and common["timestamp"] == pd.Timestamp("2015-05-17 10:05:05", tz="UTC")
    assert pd.isna(common["user_agent"]) and pd.isna(common["referrer"])
    assert ev["user_agent"].iloc[3] == r"Agent \"quoted\" 1.0"
    assert pd.isna(ev["page"].iloc[4]) and pd.isna(ev["user_agent"].iloc[4])


def test_access_log_truncated_user_agent_is_kept_other_truncation_rejected(tmp_path):
    loaded = load_log(tmp_path)
    assert loaded.events["user_agent"].iloc[5] == "Mozilla/5.0 (compatible; Googlebot/2.1"
    assert loaded.rejected[["row", "reason"]].values.tolist() == [[2, "malformed_line"], [7, "malformed_line"]]
    assert loaded.rejected["raw"].iloc[0] == "this is not a log line"


def test_access_log_unparseable_time_is_rejected(tmp_path):
    loaded = load_log(tmp_path, ['1.2.3.4 - - [99/Foo/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"'])
    assert loaded.rejected["reason"].tolist() == ["unparseable_timestamp"]


def test_access_log_without_suffix_needs_format(tmp_path):
    path = write(tmp_path / "apache_logs", LOG_LINES[0] + "\n")
    with pytest.raises(ParameterError, match="Cannot infer the format"):
        load_events(path)
    assert len(load_events(path, format="access_log").events) == 1


# ----------------------------------------------------------------------------- shared samples


@pytest.mark.shared_data
def test_rees46_sample():
    loaded = load_events(require_shared("rees46_sample", "2019-Oct-sample.csv"), format="rees46")
    check_invariant(loaded)
    ev = loaded.events
    assert loaded.n_input == 1000 and len(ev) == 1000
    assert ev["user_id"].nunique() == 330
    assert (ev["event"] == "purchase").sum() == 10
    assert ev["revenue"].notna().sum() == 10
    assert ev["timestamp"].min() == pd.Timestamp("2019-10-01", tz="UTC")
    assert set(ev["event"]) <= {"page_view", "add_to_cart", "purchase", "remove_from_cart"}
    assert ev["category"].notna().all()


@pytest.mark.shared_data
def test_otto_sample():
    loaded = load_events(require_shared("otto_sample", "train.jsonl"), format="otto")
    check_invariant(loaded)
    ev = loaded.events
    assert loaded.n_input == 862 and len(ev) == 862 and len(loaded.rejected) == 0
    assert ev["session_id"].nunique() == 20
    assert {"0", "12899778"} <= set(ev["session_id"])
    assert ev["timestamp"].dt.year.eq(2022).all()
    assert dict(zip(ev["raw_event"].map({"clicks": "page_view", "carts": "add_to_cart", "orders": "purchase"}), ev["event"])) == {
        e: e for e in ev["event"].unique()
    }


@pytest.mark.shared_data
def test_apache_sample():
    loaded = load_events(require_shared("apache_access_10k", "apache_logs"), format="access_log")
    check_invariant(loaded)
    ev = loaded.events
    assert loaded.n_input == 10_000
    assert len(ev) == 10_000 and len(loaded.rejected) == 0
    assert ev["ip"].nunique() == 1753
    assert ev.drop(columns=["user_id"]).astype(str).duplicated().sum() == 19  # dedup is a later cleaning step
    assert ev[["ip", "user_agent"]].drop_duplicates().shape[0] == ev["user_id"].nunique()
    assert str(ev["status"].dtype) == "Int64" and str(ev["bytes"].dtype) == "Int64"
    assert ev["status"].notna().all() and ev["bytes"].isna().sum() > 0
    assert ev["timestamp"].min() >= pd.Timestamp("2015-05-17", tz="UTC")
    truncated = ev.iloc[8898]  # physical line 8899: user agent cut off before its closing quote
    assert truncated["ip"] == "46.118.127.106"
    assert truncated["user_agent"] == "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html"


@pytest.mark.shared_data
def test_yoochoose_sample(shared_data):
    loaded = load_events(shared_data / "yoochoose_100k" / "yoochoose-clicks-100k_train_full.txt", format="yoochoose")
    check_invariant(loaded)
    ev = loaded.events
    assert loaded.n_input == 70_278 and len(ev) == 70_278 and len(loaded.rejected) == 0
    assert ev["user_id"].nunique() == 17_794 and ev["session_id"].equals(ev["user_id"])
    assert ev["event"].eq("product_click").all() and ev["item_id"].notna().all()
    assert ev["timestamp"].min() == pd.Timestamp("2014-04-01 01:02:21.719", tz="UTC")
    assert ev["timestamp"].max() == pd.Timestamp("2014-04-07 00:43:12.560", tz="UTC")
    test = load_events(shared_data / "yoochoose_100k" / "yoochoose-clicks-100k_test.txt")  # header inferred
    assert len(test.events) == 13_568 and len(test.rejected) == 0


@pytest.mark.shared_data
def test_diginetica_sample(shared_data):
    loaded = load_events(shared_data / "diginetica_sample" / "sample_train-item-views.csv", format="diginetica")
    check_invariant(loaded)
    ev = loaded.events
    assert loaded.n_input == 12_391 and len(ev) == 12_391 and len(loaded.rejected) == 0
    assert ev["session_id"].nunique() == 2_986
    assert ev["user_id"].str.startswith("session:").sum() == 7_681  # the rows whose userId is NA
    assert ev["timestamp"].min() == pd.Timestamp("2016-01-03 00:00:07.112", tz="UTC")
    assert ev["timestamp"].max() == pd.Timestamp("2016-06-01 00:18:44.305", tz="UTC")
