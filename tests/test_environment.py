"""The conda environment, the lock file and the package metadata agree."""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    return pins


def test_environment_yml_installs_the_lock_on_python_311():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.lock" in pip and "-e ." in pip


def test_lock_pins_every_requirement_exactly():
    pins = _lock()
    for line in (REPO / "requirements.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name = re.split(r"[<>=\[ ]", line.strip())[0]
            assert re.sub(r"[-_.]+", "-", name.lower()) in pins, f"{name} is not pinned in requirements.lock"
    for required in ["jupyterlab", "papermill", "pandas", "scikit-learn", "prefixspan", "hmmlearn", "seaborn", "nbval"]:
        assert required in pins


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    pins = _lock()
    for name in ["pandas", "numpy", "duckdb", "ibis-framework", "scikit-learn", "papermill", "nbval"]:
        assert version(name) == pins[name], f"{name} installed {version(name)} but lock pins {pins[name]}"
