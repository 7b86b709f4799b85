"""Shared test fixtures.

The real sample datasets live beside the repository in ``../shared/data`` (``/work/shared/data``
for a clone at ``/work/main``; CI checks ``shared/`` out beside the clone the same way). Tests that
need them skip when the folder is absent, except under CI (``CI`` set and non-empty), where a
missing sample is a failure rather than a silently skipped test.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_shared(*parts: str) -> Path:
    """Return ``SHARED_DATA / parts...``; skip the test when it is missing (fail under CI).

    Examples
    --------
    >>> path = require_shared("rees46_sample", "2019-Oct-sample.csv")  # doctest: +SKIP
    """
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"../shared/data not found: {path} (expected the shared samples beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared sample-data folder (skips when absent, fails under CI)."""
    return require_shared()
