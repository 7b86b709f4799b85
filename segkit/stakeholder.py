"""The headline section of a report's index page, written from the run's computed numbers.

:func:`stakeholder_summary` reads a run folder's artifacts (whatever the notebooks that ran have
written) and returns a self-contained HTML section: data cleaned, segment sizes and changes since
the previous run, top paths, clusters, model quality and alerts, with one embedded plot. Every
sentence is built from the numbers; a section whose artifacts are missing is left out, so a
partial run (say, notebooks 01, 02 and 04 on YooChoose) gets a shorter summary, not an error.
``make report`` passes it to :func:`segkit.report.build_reports`.

Examples
--------
>>> import tempfile
>>> stakeholder_summary(tempfile.mkdtemp()) is None
True
"""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pandas as pd

from .artifacts import load_artifact
from .report import _e

__all__ = ["stakeholder_summary"]


def _table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, v in zip(frame.columns, rec):
            text = "" if v is None or (isinstance(v, float) and pd.isna(v)) else (formats[col].format(v) if col in formats else v)
            cells.append(f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _sizes_plot(sizes: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    data = sizes.sort_values("n_users")
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(data) + 1))
    ax.barh(data["segment"], data["n_users"], color="#4c72b0")
    for y, v in enumerate(data["n_users"]):
        ax.text(v, y, f" {int(v):,}", va="center", fontsize=8)
    ax.set_xlabel("users")
    ax.set_title("Members per segment")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="Members per segment" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _load(run_dir: Path, name: str) -> Any:
    try:
        return load_artifact(run_dir, name, optional=True)
    except Exception:  # an unreadable artifact leaves its section out rather than failing the index
        return None


def stakeholder_summary(run_dir: str | Path) -> str | None:
    """HTML headline of a run, from its artifacts; ``None`` when the run wrote none of them."""
    from .segments import segment_sizes

    run_dir = Path(run_dir)
    parts: list[str] = []

    ledger, bots, users = _load(run_dir, "ledger"), _load(run_dir, "bots"), _load(run_dir, "user_features")
    if ledger is not None and users is not None:
        dropped = ledger.loc[ledger["action"] == "dropped"].groupby("step")["rows"].sum()
        n_bots = int(bots["is_bot"].sum()) if bots is not None and "is_bot" in bots else 0
        text = (f"{len(users):,} visitors analysed after cleaning; {int(dropped.sum()):,} raw rows were set aside "
                f"({', '.join(f'{k}: {int(v):,}' for k, v in dropped.sort_values(ascending=False).items())})")
        if n_bots:
            text += f", including every event of {n_bots:,} bot visitors"
        parts.append(f"<p>{_e(text)}.</p>")

    membership = _load(run_dir, "segment_membership")
    changes = _load(run_dir, "segment_changes")
    if membership is not None:
        n = len(users) if users is not None else membership.attrs.get("n_users")
        sizes = segment_sizes(membership, n_users=n)
        table = sizes.rename(columns={"n_users": "members"})
        if changes is not None and "segment" in changes:
            table = table.merge(changes[["segment", "entered", "left"]], on="segment", how="left")
        biggest = sizes.loc[sizes["n_users"].idxmax()]
        parts.append(f"<h3>Segments</h3><p>{_e(f'{len(sizes)} rule segments; the largest, {biggest.segment}, holds {biggest.share:.0%} of visitors.')}"
                     + (" Entered / left count the change since the previous run." if changes is not None else "") + "</p>")
        parts.append(_table(table, {"share": "{:.1%}", "members": "{:,}", "entered": "{:,.0f}", "left": "{:,.0f}"}))
        parts.append(_sizes_plot(sizes))

    patterns = _load(run_dir, "patterns")
    markov = _load(run_dir, "markov")
    if patterns is not None and len(patterns):
        top = patterns.sort_values("support", ascending=False).head(5)
        parts.append("<h3>Frequent paths</h3><p>" + _e("The most common multi-step paths (sessions that show them): " + "; ".join(
            f"{r.pattern} ({r.support:,})" for r in top.itertuples())) + ".</p>")
    if markov is not None and markov.get("reason"):
        parts.append(f"<p>{_e('Markov chain: ' + markov['reason'].rstrip('.'))}.</p>")

    clusters = _load(run_dir, "clusters")
    if clusters is not None and "cluster_name" in clusters:
        counts = clusters["cluster_name"].value_counts()
        parts.append("<h3>Behavioral clusters</h3><p>" + _e(f"{len(counts)} clusters: " + "; ".join(
            f"{name} ({v / counts.sum():.0%})" for name, v in counts.items())) + ".</p>")

    metrics = _load(run_dir, "intent_metrics")
    if metrics:
        parts.append("<h3>Purchase intent</h3><p>" + _e(
            f"The {metrics.get('model')} model ranks visitors by the chance of a {metrics.get('label')}: ROC-AUC "
            f"{metrics.get('roc_auc', float('nan')):.2f} on a later period (PR-AUC {metrics.get('pr_auc', float('nan')):.2f} "
            f"against a base rate of {metrics.get('base_rate', float('nan')):.1%}); the top-scored 10% buy "
            f"{metrics.get('top_decile_lift', float('nan')):.1f} times as often as average.") + "</p>")

    alerts = _load(run_dir, "alerts")
    if alerts is not None:
        if len(alerts):
            levels = alerts["level"].value_counts()
            parts.append("<h3>Alerts</h3><p>" + _e(", ".join(f"{int(v)} {k}" for k, v in levels.items())) + ".</p>")
            parts.append(_table(alerts[["level", "check", "subject", "message"]]))
        else:
            parts.append("<h3>Alerts</h3><p>No monitoring alert or pitfall warning in this run.</p>")

    if not parts:
        return None
    return "<section class=\"summary\"><h2>Headlines</h2>" + "".join(parts) + "</section>"
