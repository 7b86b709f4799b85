"""Small descriptive tables the notebooks show."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .errors import check_columns

__all__ = ["count_values"]


def count_values(df: pd.DataFrame, columns: Sequence[str], *, top: int = 12, missing: str = "(missing)") -> pd.DataFrame:
    """Counts and shares of the ``top`` most frequent values of each column, missing values included.

    Returns a long table with ``column``, ``value``, ``rows`` and ``share``; values beyond ``top``
    are summed into ``(other)`` so the shares of each column add up to 1.

    Examples
    --------
    >>> count_values(pd.DataFrame({"device": ["Mobile", "Mobile", None]}), ["device"])["rows"].tolist()
    [2, 1]
    """
    check_columns(df.columns, columns, what="frame")
    parts = []
    for col in columns:
        counts = df[col].astype("string").fillna(missing).value_counts()
        if len(counts) > top:
            counts = pd.concat([counts.iloc[:top], pd.Series({"(other)": counts.iloc[top:].sum()})])
        parts.append(
            pd.DataFrame({"column": col, "value": counts.index.astype(str), "rows": counts.to_numpy()})
        )
    out = pd.concat(parts, ignore_index=True)
    out["share"] = out["rows"] / len(df) if len(df) else 0.0
    return out
