"""Plots the notebooks show. Each function draws on an Axes (a new figure when none is given)
and returns it; notebooks end the cell with ``plt.show()``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from .errors import check_columns

__all__ = ["plot_events_per_day", "plot_counts", "plot_waterfall", "plot_histograms", "set_style"]


def set_style() -> None:
    """The house style: seaborn whitegrid, readable sizes, fixed figure size."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", rc={"figure.figsize": (9, 4), "figure.dpi": 90})


def _axes(ax: Axes | None, size: tuple[float, float] = (9, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def plot_events_per_day(
    events: pd.DataFrame,
    *,
    by: str | None = "event_category",
    timestamp_col: str = "timestamp",
    ax: Axes | None = None,
) -> Axes:
    """Stacked daily event counts (UTC days), split by ``by`` (e.g. the taxonomy category)."""
    need = [timestamp_col] + ([by] if by else [])
    check_columns(events.columns, need, what="events")
    ax = _axes(ax)
    day = events[timestamp_col].dt.floor("D").dt.tz_localize(None)
    if by:
        table = pd.crosstab(day, events[by].astype("string").fillna("(missing)"))
        table.plot.area(ax=ax, linewidth=0, alpha=0.85)
        ax.legend(title=by, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    else:
        day.value_counts().sort_index().plot(ax=ax)
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel("events")
    ax.set_title("Events per day")
    return ax


def plot_counts(counts: pd.Series, *, title: str, xlabel: str = "events", ax: Axes | None = None, top: int = 20) -> Axes:
    """Horizontal bar chart of the ``top`` largest counts."""
    ax = _axes(ax, (8, max(2.5, 0.3 * min(top, len(counts)) + 1)))
    counts.sort_values(ascending=True).tail(top).plot.barh(ax=ax, color="#4C72B0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    return ax


def plot_waterfall(waterfall: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Rows remaining after each cleaning step, with the rows each step dropped.

    ``waterfall`` is :meth:`segkit.clean.CleanResult.waterfall` (``step``, ``dropped``, ``remaining``).
    """
    check_columns(waterfall.columns, ["step", "dropped", "remaining"], what="waterfall")
    ax = _axes(ax, (9, 4))
    steps = waterfall["step"].astype(str).tolist()
    remaining = waterfall["remaining"].to_numpy()
    dropped = waterfall["dropped"].to_numpy()
    ax.bar(steps, remaining, color="#4C72B0", label="rows remaining")
    ax.bar(steps, dropped, bottom=remaining, color="#DD8452", label="rows dropped at this step")
    for i, (r, d) in enumerate(zip(remaining, dropped)):
        if d:
            ax.annotate(f"-{d:,}", (i, r + d), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("rows")
    ax.set_title("Cleaning waterfall")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.tick_params(axis="x", rotation=30)
    return ax


def plot_histograms(df: pd.DataFrame, columns: list[str], *, log: bool = True, bins: int = 40) -> plt.Figure:
    """One histogram per column side by side (log-scaled x for heavy-tailed counts and durations)."""
    import numpy as np

    check_columns(df.columns, columns, what="frame")
    fig, axes = plt.subplots(1, len(columns), figsize=(4.5 * len(columns), 3.5), squeeze=False)
    for ax, col in zip(axes[0], columns):
        values = pd.to_numeric(df[col], errors="coerce").dropna()
        if log:
            values = values[values > 0]
            edges = np.logspace(np.log10(max(values.min(), 1e-3)), np.log10(max(values.max(), 1.0)), bins) if len(values) else bins
            ax.hist(values, bins=edges, color="#4C72B0")
            ax.set_xscale("log")
        else:
            ax.hist(values, bins=bins, color="#4C72B0")
        ax.set_title(col)
        ax.set_ylabel("count")
    fig.tight_layout()
    return fig
