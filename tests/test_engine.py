"""Row numbering without copies: DataFrames, multi-file Parquet, other tables."""
from __future__ import annotations

import ibis
import pandas as pd
import pytest

from segkit.engine import ROW_COL, numbered, to_pandas
from segkit.errors import ParameterError


def test_dataframe_rows_are_numbered_in_input_order_and_the_input_is_unchanged():
    df = pd.DataFrame({"user_id": ["b", "a", "c"]})
    out = to_pandas(numbered(df)).sort_values(ROW_COL)
    assert out["user_id"].tolist() == ["b", "a", "c"] and out[ROW_COL].tolist() == [0, 1, 2]
    assert ROW_COL not in df.columns
    with pytest.raises(ParameterError, match="reserved by segkit"):
        numbered(df.assign(**{ROW_COL: 1}))


def test_parquet_files_are_numbered_across_files_from_their_footers(tmp_path):
    pd.DataFrame({"x": [10, 11]}).to_parquet(tmp_path / "part-0.parquet")
    pd.DataFrame({"x": [20, 21, 22]}).to_parquet(tmp_path / "part-1.parquet")
    t = numbered(str(tmp_path / "*.parquet"))
    assert ROW_COL in t.columns and "filename" not in t.columns and "file_row_number" not in t.columns
    out = to_pandas(t).sort_values(ROW_COL)
    assert out[ROW_COL].tolist() == [0, 1, 2, 3, 4] and out["x"].tolist() == [10, 11, 20, 21, 22]
    assert to_pandas(numbered(tmp_path).order_by(ROW_COL))["x"].tolist() == [10, 11, 20, 21, 22]  # a folder too
    with pytest.raises(ParameterError, match="does not exist"):
        numbered(str(tmp_path / "missing.parquet"))


def test_another_table_is_numbered_once_and_a_numbered_one_is_kept():
    t = ibis.memtable(pd.DataFrame({"x": [5, 6]}))
    n = numbered(t)
    assert sorted(to_pandas(n)[ROW_COL].tolist()) == [0, 1]
    assert numbered(n) is n
