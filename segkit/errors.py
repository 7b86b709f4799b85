"""Error types shared by every segkit module.

All errors raised on bad user input derive from :class:`SegkitError`. Subclasses carry structured
fields so that notebooks and tests can inspect what went wrong without parsing the message.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "SegkitError",
    "SchemaError",
    "ParameterError",
    "ArtifactError",
    "NotFittedError",
    "did_you_mean",
    "format_allowed",
]

_MAX_LISTED = 8


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close.

    Examples
    --------
    >>> did_you_mean("user", ["user_id", "event"])
    " did you mean 'user_id'?"
    """
    pool = [str(c) for c in candidates]
    matches = difflib.get_close_matches(str(name), pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        prefixed = [c for c in pool if c.lower().startswith(str(name).lower())]
        if str(name).lower() in lowered:
            matches = [lowered[str(name).lower()]]
        elif prefixed:
            matches = prefixed[:1]
    return f" did you mean {matches[0]!r}?" if matches else ""


def format_allowed(allowed: Iterable[Any], limit: int = _MAX_LISTED) -> str:
    """Render a capped list of allowed values for an error message."""
    items = list(allowed)
    shown = ", ".join(repr(a) for a in items[:limit])
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return f"[{shown}{more}]"


class SegkitError(Exception):
    """Base class of every error segkit raises on bad input or state."""


class SchemaError(SegkitError):
    """An event log (or another table) does not match the schema it must follow.

    Attributes
    ----------
    failures : list of dict
        One entry per failed check with keys ``column``, ``check``, ``message``, ``count`` and
        ``examples`` (a small DataFrame of offending rows, or ``None``).
    """

    def __init__(self, failures: Sequence[dict[str, Any]], *, title: str = "Event log failed validation"):
        self.failures = list(failures)
        lines = [f"{title}: {len(self.failures)} problem(s)"]
        for f in self.failures:
            lines.append(f"  - {f['message']}")
            ex = f.get("examples")
            if ex is not None and len(ex):
                rendered = ex.to_string(max_colwidth=40).splitlines()
                lines.extend("      " + r for r in rendered)
        super().__init__("\n".join(lines))

    @property
    def columns(self) -> list[str]:
        """Columns named by the failures, in order, without repeats."""
        return list(dict.fromkeys(f["column"] for f in self.failures if f.get("column")))


class ParameterError(SegkitError, ValueError):
    """A parameter (function argument or parameter-file key) has a value that is not allowed.

    Attributes
    ----------
    name : str
        The parameter's name or dotted path (``cleaning.timeout``).
    value : object
        The offending value.
    allowed : object
        What is allowed, as a short description or a list.
    """

    def __init__(self, name: str, value: Any = None, allowed: Any = None, message: str | None = None):
        self.name = name
        self.value = value
        self.allowed = allowed
        if message is None:
            message = f"Parameter {name!r} got {value!r}"
            if allowed is not None:
                shown = format_allowed(allowed) if isinstance(allowed, (list, tuple, set, frozenset)) else allowed
                message += f"; allowed: {shown}"
            if isinstance(value, str) and isinstance(allowed, (list, tuple, set, frozenset)):
                message += did_you_mean(value, [str(a) for a in allowed])
        super().__init__(message)


class ArtifactError(SegkitError):
    """A run artifact is missing or unreadable; the message names the notebook that produces it."""


class NotFittedError(SegkitError, AttributeError):
    """A fitted-model method was called before ``fit``."""


def check_columns(columns: Iterable[str], required: Iterable[str], *, what: str = "frame") -> None:
    """Raise :class:`SchemaError` listing every required column that is missing.

    Examples
    --------
    >>> check_columns(["user_id", "event"], ["user_id"])
    """
    have = list(columns)
    failures = []
    for col in required:
        if col not in have:
            failures.append(
                {
                    "column": col,
                    "check": "missing_column",
                    "count": None,
                    "examples": None,
                    "message": f"Column {col!r} not found in {what};{did_you_mean(col, have)} "
                    f"Available: {format_allowed(have)}",
                }
            )
    if failures:
        raise SchemaError(failures, title=f"{what} is missing required columns")
