"""Provenance for a run: package versions, the git commit and content fingerprints.

These values make up the *run card* written next to every report (see :mod:`segkit.report`), so a
reader can tell which code, environment and data produced the numbers.

Examples
--------
>>> import pandas as pd
>>> from segkit.runinfo import fingerprint_frame
>>> fp = fingerprint_frame(pd.DataFrame({"user_id": ["a", "b"], "n": [1, 2]}))
>>> fp["rows"], len(fp["sha256"])
(2, 64)
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segkit.errors import ArtifactError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "KEY_PACKAGES",
    "package_versions",
    "git_commit",
    "fingerprint_frame",
    "fingerprint_file",
]

#: Distributions whose versions go on the run card (``python`` is the interpreter itself).
KEY_PACKAGES: tuple[str, ...] = (
    "segkit",
    "python",
    "pandas",
    "numpy",
    "scikit-learn",
    "duckdb",
    "ibis-framework",
    "prefixspan",
    "hmmlearn",
    "papermill",
)

_CHUNK = 1 << 20


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Return the installed version of each distribution, in the order given.

    Parameters
    ----------
    names : iterable of str, default=KEY_PACKAGES
        Distribution names as pip spells them (``"scikit-learn"``, ``"ibis-framework"``).
        ``"python"`` gives the interpreter version.

    Returns
    -------
    dict of str to str
        ``{name: version}``; a distribution that is not installed maps to ``"not installed"``.

    Examples
    --------
    >>> package_versions(["python"])["python"].count(".")
    2
    """
    out: dict[str, str] = {}
    for name in names:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def git_commit(cwd: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """Return the short commit hash of the repository containing ``cwd`` and whether it is dirty.

    Parameters
    ----------
    cwd : path-like, default="."
        Any folder inside the working tree.

    Returns
    -------
    dict
        ``{"commit": str, "dirty": bool | None}``. ``commit`` is ``"unknown"`` (and ``dirty`` is
        ``None``) when ``cwd`` is not in a git repository, the repository has no commit yet, or
        git is not installed. ``dirty`` is true when ``git status --porcelain`` lists anything:
        modified tracked files or untracked files that are not ignored (an untracked notebook
        changes the report too).

    Examples
    --------
    >>> sorted(git_commit("/"))
    ['commit', 'dirty']
    """
    where = Path(cwd)
    head = _git(["rev-parse", "--short", "HEAD"], where)
    if head is None or not head.strip():
        return {"commit": "unknown", "dirty": None}
    status = _git(["status", "--porcelain"], where)
    return {"commit": head.strip(), "dirty": None if status is None else bool(status.strip())}


def fingerprint_frame(df: pd.DataFrame) -> dict[str, Any]:
    """Return a stable content hash and the row count of a DataFrame.

    The hash covers the column names, their order and dtypes, and every value (row order
    included), but not the index. It is stable across calls and processes (pandas hashes with a
    fixed key) for a given pandas version; a pandas upgrade may change it.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame to fingerprint. It is not modified.

    Returns
    -------
    dict
        ``{"sha256": str, "rows": int}``.

    Raises
    ------
    ParameterError
        If ``df`` is not a DataFrame or a column holds values pandas cannot hash (lists, dicts).

    Examples
    --------
    >>> import pandas as pd
    >>> a = fingerprint_frame(pd.DataFrame({"x": [1, 2]}))
    >>> b = fingerprint_frame(pd.DataFrame({"x": [1, 3]}))
    >>> a == fingerprint_frame(pd.DataFrame({"x": [1, 2]})), a == b
    (True, False)
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ParameterError("df", type(df).__name__, "a pandas DataFrame")
    digest = hashlib.sha256()
    header = [[str(c), str(t)] for c, t in zip(df.columns, df.dtypes)]
    digest.update(json.dumps({"columns": header, "rows": len(df)}).encode())
    for col in range(df.shape[1]):
        series = df.iloc[:, col]
        try:
            hashed = pd.util.hash_pandas_object(series, index=False)
        except TypeError as exc:
            raise ParameterError(
                f"df[{df.columns[col]!r}]",
                str(series.dtype),
                "hashable scalar values (no lists or dicts)",
                message=f"Cannot fingerprint column {df.columns[col]!r}: {exc}",
            ) from exc
        digest.update(hashed.to_numpy(dtype="uint64").tobytes())
    return {"sha256": digest.hexdigest(), "rows": int(len(df))}


def fingerprint_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the sha256 and size in bytes of a file.

    Parameters
    ----------
    path : path-like
        The file to hash; it is read in chunks, so large files are fine.

    Returns
    -------
    dict
        ``{"sha256": str, "bytes": int}``.

    Raises
    ------
    ArtifactError
        If ``path`` does not exist or is not a regular file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_text("hello")
    >>> fingerprint_file(p)["bytes"]
    5
    """
    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"Cannot fingerprint {str(p)!r}: not an existing file")
    digest = hashlib.sha256()
    size = 0
    with p.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}
