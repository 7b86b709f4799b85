"""Small descriptive tables the notebooks show."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from .errors import ParameterError, check_columns

__all__ = ["count_values"]


def count_values(df: pd.DataFrame, columns: Sequence[str], *, top: int = 12, missing: str = "(missing)",
                 absent: Literal["error", "report"] = "error") -> pd.DataFrame:
    """Counts and shares of the ``top`` most frequent values of each column, missing values included.

    Returns a long table with ``column``, ``value``, ``rows`` and ``share``; values beyond ``top``
    are summed into ``(other)`` so the shares of each column add up to 1. A column the frame does
    not have is an error, or with ``absent="report"`` one row ``"(not in the data)"`` covering
    every row (a source that never tracks it).

    Examples
    --------
    >>> count_values(pd.DataFrame({"device": ["Mobile", "Mobile", None]}), ["device"])["rows"].tolist()
    [2, 1]
    >>> count_values(pd.DataFrame({"event": ["a"]}), ["device"], absent="report")["value"].tolist()
    ['(not in the data)']
    """
    if absent not in ("error", "report"):
        raise ParameterError("absent", absent, ["error", "report"])
    if absent == "error":
        check_columns(df.columns, columns, what="frame")
    parts = []
    for col in columns:
        if col not in df.columns:
            parts.append(pd.DataFrame({"column": [col], "value": ["(not in the data)"], "rows": [len(df)]}))
            continue
        counts = df[col].astype("string").fillna(missing).value_counts()
        if len(counts) > top:
            counts = pd.concat([counts.iloc[:top], pd.Series({"(other)": counts.iloc[top:].sum()})])
        parts.append(
            pd.DataFrame({"column": col, "value": counts.index.astype(str), "rows": counts.to_numpy()})
        )
    out = pd.concat(parts, ignore_index=True)
    out["share"] = out["rows"] / len(df) if len(df) else 0.0
    return out
