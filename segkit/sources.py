"""Load the events a parameter set points at: the simulated shop or a user's own file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import ParameterError
from .io import LoadedEvents, load_events
from .params import Params

__all__ = ["SourceData", "load_source", "record_source"]


@dataclass(frozen=True)
class SourceData:
    """What a run starts from.

    Attributes
    ----------
    loaded : LoadedEvents
        Events in the canonical schema plus the input rows the reader rejected.
    crm : pandas.DataFrame or None
        CRM attributes (``customer_id``, ``lifetime_value``, ``is_vip``, ...), when available.
    truth : pandas.DataFrame or None
        Planted truth per visitor (simulated shop only).
    description : str
        One line saying where the data came from.
    """

    loaded: LoadedEvents
    crm: pd.DataFrame | None
    truth: pd.DataFrame | None
    description: str


def load_source(params: Params, *, root: str | Path | None = None) -> SourceData:
    """Read the events of a parameter set through segkit's readers.

    The simulated shop's raw export goes through :func:`segkit.load_events` with its column
    mapping, exactly as a user's CSV export would.
    """
    if params.data.source == "simulate":
        from .simulate import simulate_shop

        s = params.simulate
        shop = simulate_shop(
            s.n_users,
            n_days=s.n_days,
            start=s.start,
            seed=params.seed,
            timezone=s.timezone,
            bot_share=s.bot_share,
            dirt=s.dirt,
        )
        loaded = load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
        desc = f"simulated shop: {s.n_users:,} visitors over {s.n_days} days, seed {params.seed}"
        return SourceData(loaded, shop.crm, shop.truth, desc)
    d = params.data
    assert d.path is not None  # guaranteed by DataParams validation
    path = params.resolve(d.path, root)
    if not path.exists():
        raise ParameterError("data.path", d.path, message=f"Parameter 'data.path' got {d.path!r}: no such file ({path})")
    loaded = load_events(path, format=d.format, columns=dict(d.columns) or None, timezone=d.timezone)
    crm = None
    if d.crm_path:
        crm_file = params.resolve(d.crm_path, root)
        if not crm_file.exists():
            raise ParameterError("data.crm_path", d.crm_path, message=f"Parameter 'data.crm_path' got {d.crm_path!r}: no such file")
        crm = pd.read_parquet(crm_file) if crm_file.suffix == ".parquet" else pd.read_csv(crm_file)
    return SourceData(loaded, crm, None, f"file {d.path} ({d.format or path.suffix.lstrip('.')})")


def record_source(run_dir: str | Path, source: SourceData) -> dict[str, object]:
    """Save a run's inputs as artifacts and return the data fingerprint shown on the run card.

    Writes ``raw_events``, ``read_rejected``, ``crm`` and ``truth`` (when present) and
    ``data_fingerprint`` (content hash and row count of the events, input and rejected rows).
    """
    from .artifacts import save_artifact
    from .runinfo import fingerprint_frame

    events = source.loaded.events
    save_artifact(run_dir, "raw_events", events)
    save_artifact(run_dir, "read_rejected", source.loaded.rejected)
    if source.crm is not None:
        save_artifact(run_dir, "crm", source.crm)
    if source.truth is not None:
        save_artifact(run_dir, "truth", source.truth)
    fp = fingerprint_frame(events)
    fingerprint: dict[str, object] = {
        "sha256": fp["sha256"],
        "rows": int(fp["rows"]),
        "input_rows": int(source.loaded.n_input),
        "rejected_rows": int(len(source.loaded.rejected)),
        "source": source.description,
    }
    save_artifact(run_dir, "data_fingerprint", fingerprint)
    return fingerprint
