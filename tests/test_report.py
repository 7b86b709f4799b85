"""Tests for segkit.report and segkit.runinfo, on tiny fixture notebooks."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from segkit.errors import ArtifactError, ParameterError, SegkitError
from segkit.report import (
    SUMMARY_END_MARKER,
    SUMMARY_MARKER,
    ReportError,
    build_reports,
    find_notebooks,
    notebook_title,
    refresh_notebooks,
    render_index,
    select_notebooks,
    strip_execution_metadata,
)
from segkit.runinfo import fingerprint_file, fingerprint_frame, git_commit, package_versions

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
GOOD = ["01_numbers.ipynb", "02_plot.ipynb"]
BROKEN = FIXTURES / "broken" / "03_broken.ipynb"
LIGHT = FIXTURES / "light" / "01_light.ipynb"  # no imports: the quickest kernel run


@dataclass(frozen=True)
class StandInParams:
    """The part of segkit.params.Params that build_reports uses."""

    name: str = "demo"
    seed: int = 7
    values: dict[str, Any] = field(
        default_factory=lambda: {"seed": 7, "x": 42, "y": 2.5, "z": 5, "extra_key": "unused"}
    )

    def flat(self) -> dict[str, Any]:
        return dict(self.values)

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return asdict(self)


def _notebooks(tmp: Path, names: list[str], broken: bool = False, light: bool = False) -> Path:
    folder = tmp / "notebooks"
    folder.mkdir(parents=True)
    for n in names:
        shutil.copy(FIXTURES / n, folder / n)
    for extra, wanted in ((BROKEN, broken), (LIGHT, light)):
        if wanted:
            shutil.copy(extra, folder / extra.name)
    return folder


def _build(tmp: Path, nb_dir: Path, params: StandInParams | None = None, **kw: Any):
    return build_reports(
        params or StandInParams(),
        notebooks_dir=nb_dir,
        reports_dir=tmp / "reports",
        runs_dir=tmp / "runs",
        cell_timeout=60,
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("build")
    result = _build(tmp, _notebooks(tmp, GOOD), summary_html="<p>Three segments.</p>")
    return tmp, result


# --------------------------------------------------------------------------------------------
# build_reports: a successful run


def test_build_writes_html_notebooks_and_index(built):
    tmp, result = built
    out = tmp / "reports" / "demo"
    assert result.report_dir == out
    for stem in ("01_numbers", "02_plot"):
        for suffix in (".html", ".code.html", ".ipynb"):
            assert (out / f"{stem}{suffix}").is_file()
    assert (out / "index.html").is_file() and (out / "run.json").is_file()
    assert not (tmp / "reports" / ".demo.partial").exists()


def test_index_links_every_notebook_with_its_title(built):
    _, result = built
    index = result.index_path.read_text()
    for link in ("01_numbers.html", "01_numbers.code.html", "02_plot.html", "02_plot.code.html"):
        assert f'href="{link}"' in index
    assert "Numbers of the run" in index and "A small plot" in index


def test_injected_value_appears_in_output(built):
    _, result = built
    html = (result.report_dir / "01_numbers.html").read_text()
    assert "x = 42, label = fixture" in html
    assert "y = 2.5" in (result.report_dir / "02_plot.html").read_text()


def test_only_declared_keys_are_injected(built):
    _, result = built
    nb = nbformat.read(result.report_dir / "01_numbers.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    src = injected[0].source
    assert "x = 42" in src and "run_dir = " in src
    assert "extra_key" not in src and "seed" not in src and "y = " not in src
    assert result.notebooks[0].injected["run_dir"] == str(result.run_dir)
    assert result.unused_parameters == ("extra_key", "seed", "z")


def test_notebook_default_for_key_missing_from_set_is_recorded(built):
    _, result = built
    assert result.notebooks[0].defaults == {"label": '"fixture"'}
    assert "label" in result.index_path.read_text()


def test_run_card_has_params_versions_fingerprint(built):
    _, result = built
    card = json.loads((result.report_dir / "run.json").read_text())
    assert card["name"] == "demo" and card["seed"] == 7
    assert card["parameters"]["x"] == 42
    assert card["segkit_version"] == package_versions(["segkit"])["segkit"]
    for pkg in ("python", "pandas", "numpy", "scikit-learn", "duckdb", "ibis-framework",
                "prefixspan", "hmmlearn", "papermill"):
        assert pkg in card["packages"]
    assert set(card["git"]) == {"commit", "dirty"}
    assert card["data_fingerprint"]["rows"] == 2
    assert card["data_fingerprint"]["source"] == "fixture"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", card["started_at"])
    assert [n["notebook"] for n in card["notebooks"]] == GOOD
    index = result.index_path.read_text()
    for text in ("extra_key", card["data_fingerprint"]["sha256"], card["packages"]["pandas"],
                 card["git"]["commit"]):
        assert text in index


def test_html_needs_no_remote_scripts(built):
    _, result = built
    for page in result.report_dir.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"""src=["']?(https?:)?//""", text), page.name
        assert "require.min.js" not in text and "mathjax" not in text.lower()
        assert not re.search(r"<link[^>]+href=[\"']?https?:", text), page.name


def test_plot_is_embedded_as_base64(built):
    _, result = built
    html = (result.report_dir / "02_plot.html").read_text()
    assert re.search(r'<img [^>]*src="data:image/png;base64,', html)


def test_stakeholder_html_hides_code(built):
    _, result = built
    plain = (result.report_dir / "01_numbers.html").read_text()
    code = (result.report_dir / "01_numbers.code.html").read_text()
    assert "fingerprint_frame" not in plain and "run_dir" not in plain
    assert "fingerprint_frame" in code and "run_dir" in code


def test_summary_placeholder_holds_summary(built):
    _, result = built
    index = result.index_path.read_text()
    start, end = index.index(SUMMARY_MARKER), index.index(SUMMARY_END_MARKER)
    assert "<p>Three segments.</p>" in index[start:end]


def test_rebuild_replaces_report_and_clears_run_dir(tmp_path):
    nb_dir = _notebooks(tmp_path, [], light=True)
    first = _build(tmp_path, nb_dir, code_html=False)
    (first.report_dir / "stale.txt").write_text("old")
    (first.run_dir / "stale.parquet").write_text("old")
    second = _build(tmp_path, nb_dir, StandInParams(values={"x": 7}), code_html=False)
    assert not (second.report_dir / "stale.txt").exists()
    assert not (second.run_dir / "stale.parquet").exists()
    assert "x = 7" in (second.report_dir / "01_light.html").read_text()
    assert not (second.report_dir / "01_light.code.html").exists()


# --------------------------------------------------------------------------------------------
# build_reports: failures


def test_failure_names_notebook_and_cell_and_keeps_previous_report(tmp_path):
    nb_dir = _notebooks(tmp_path, [], broken=True, light=True)
    previous = tmp_path / "reports" / "demo"
    previous.mkdir(parents=True)
    (previous / "index.html").write_text("previous complete report")
    with pytest.raises(ReportError, match=r"'03_broken\.ipynb' failed in cell 3") as info:
        _build(tmp_path, nb_dir)
    err = info.value
    assert err.notebook == "03_broken.ipynb" and err.cell_index == 3
    assert err.ename == "ValueError" and "z is 5" in err.evalue
    assert "raise ValueError" in str(err) and "ValueError: z is 5" in str(err)
    assert (previous / "index.html").read_text() == "previous complete report"
    assert sorted(p.name for p in previous.iterdir()) == ["index.html"]
    failed = tmp_path / "reports" / ".demo.failed"
    assert err.failed_dir == failed and str(failed) in str(err)
    assert (failed / "03_broken.ipynb").is_file() and (failed / "FAILED.txt").is_file()
    assert not (tmp_path / "reports" / ".demo.partial").exists()


def test_failure_publishes_nothing_when_no_report_existed(tmp_path):
    nb_dir = _notebooks(tmp_path, [], broken=True)
    with pytest.raises(ReportError, match="No report was published"):
        _build(tmp_path, nb_dir)
    assert not (tmp_path / "reports" / "demo").exists()


def test_notebook_without_parameters_cell_fails_before_running(tmp_path):
    nb_dir = _notebooks(tmp_path, [])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "p"}
    nbformat.write(nb, nb_dir / "01_loose.ipynb")
    with pytest.raises(ReportError, match="no cell tagged 'parameters'"):
        _build(tmp_path, nb_dir)
    assert not (tmp_path / "runs").exists()


def test_empty_notebook_folder_is_an_error(tmp_path):
    with pytest.raises(ReportError, match="No notebooks matching"):
        _build(tmp_path, _notebooks(tmp_path, []))


@pytest.mark.parametrize("bad", ["", ".hidden", "a/b", "../up"])
def test_unsafe_set_name_is_rejected(tmp_path, bad):
    with pytest.raises(ParameterError, match="'name'"):
        _build(tmp_path, _notebooks(tmp_path, GOOD[:1]), StandInParams(name=bad))


def test_params_of_wrong_type_are_rejected(tmp_path):
    with pytest.raises(ParameterError, match="'params'"):
        build_reports(42, notebooks_dir=tmp_path)  # type: ignore[arg-type]


def test_report_error_is_a_segkit_error():
    assert issubclass(ReportError, SegkitError)


# --------------------------------------------------------------------------------------------
# build_reports: report.notebooks selects what runs


def test_report_notebooks_runs_only_the_selected_notebooks(tmp_path):
    from segkit.params import Params

    nb_dir = _notebooks(tmp_path, [], broken=True, light=True)  # 03_broken would fail if it ran
    params = Params(name="demo", report={"notebooks": ["01"]})
    result = _build(tmp_path, nb_dir, params, code_html=False)
    assert [r.notebook for r in result.notebooks] == ["01_light.ipynb"]
    assert not (result.report_dir / "03_broken.html").exists()
    card = json.loads((result.report_dir / "run.json").read_text())
    assert [n["notebook"] for n in card["notebooks"]] == ["01_light.ipynb"]
    assert card["notebooks_selected"] == ["01"] and card["notebooks_skipped"] == ["03_broken.ipynb"]
    assert "report_notebooks" not in result.unused_parameters  # consumed by build_reports itself


def test_index_lists_only_the_notebooks_that_ran(tmp_path):
    nb_dir = _notebooks(tmp_path, [], broken=True, light=True)
    params = StandInParams(values={"x": 3, "report_notebooks": ["01_light"]})
    index = _build(tmp_path, nb_dir, params, code_html=False).index_path.read_text()
    assert 'href="01_light.html"' in index and 'href="03_broken.html"' not in index
    assert "Not run for this parameter set" in index and "03_broken.ipynb" in index


def test_unknown_report_notebook_fails_before_anything_runs(tmp_path):
    nb_dir = _notebooks(tmp_path, GOOD)
    params = StandInParams(values={"report_notebooks": ["01", "02_plots", "05"]})
    with pytest.raises(ParameterError, match=r"'02_plots' matches no notebook; did you mean '02_plot'\?.*'05' matches no notebook") as info:
        _build(tmp_path, nb_dir, params)
    assert info.value.name == "report.notebooks" and info.value.value == "02_plots"
    assert "Available in" in str(info.value) and "['01_numbers', '02_plot']" in str(info.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_select_notebooks_matches_number_stem_or_file_name_in_name_order():
    nbs = [Path("01_a.ipynb"), Path("02_b.ipynb"), Path("03_c.ipynb"), Path("04_d.ipynb")]
    assert select_notebooks(nbs, None) == nbs
    picked = select_notebooks(nbs, ["04", "02_b", "01_a.ipynb", "02"])
    assert [p.name for p in picked] == ["01_a.ipynb", "02_b.ipynb", "04_d.ipynb"]


def test_select_notebooks_rejects_empty_and_non_string_selections():
    nbs = [Path("01_a.ipynb")]
    with pytest.raises(ParameterError, match="empty list, which selects no notebook; leave it unset"):
        select_notebooks(nbs, [])
    with pytest.raises(ParameterError, match=r"1 is not a string \(quote numbers in YAML"):
        select_notebooks(nbs, [1])  # type: ignore[list-item]
    with pytest.raises(ParameterError, match="expected a list of notebook numbers"):
        select_notebooks(nbs, "01")
    with pytest.raises(ParameterError, match=r"'1' matches no notebook; did you mean '01'\?"):
        select_notebooks(nbs, ["1"])


def test_refresh_only_accepts_notebook_numbers(tmp_path):
    nb_dir = _notebooks(tmp_path, [], broken=True, light=True)
    assert refresh_notebooks(nb_dir, only=["01"], progress=False) == [nb_dir / LIGHT.name]


# --------------------------------------------------------------------------------------------
# refresh_notebooks


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory):
    """Refresh one notebook twice; return its path and the bytes before and after each run."""
    nb_dir = _notebooks(tmp_path_factory.mktemp("refresh"), [], light=True)
    path = nb_dir / LIGHT.name
    before = path.read_bytes()
    returned = refresh_notebooks(nb_dir, progress=False)
    first = path.read_bytes()
    refresh_notebooks(nb_dir, progress=False)
    return path, returned, before, first, path.read_bytes()


def test_refresh_updates_outputs_in_place_without_timing_metadata(refreshed):
    path, returned, before, first, _ = refreshed
    assert returned == [path] and first != before
    nb = nbformat.reads(first.decode(), 4)
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert outputs == "x = 1\n"  # the notebook's own default: nothing injected
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "papermill" not in nb.metadata
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)


def test_refresh_twice_gives_identical_files(refreshed):
    *_, first, second = refreshed
    assert second == first


def test_refresh_failure_leaves_notebooks_untouched(tmp_path):
    nb_dir = _notebooks(tmp_path, [], broken=True)
    before = (nb_dir / BROKEN.name).read_bytes()
    with pytest.raises(ReportError, match="No notebook was modified"):
        refresh_notebooks(nb_dir, progress=False)
    assert (nb_dir / BROKEN.name).read_bytes() == before


def test_refresh_only_unknown_notebook_is_an_error(tmp_path):
    with pytest.raises(ParameterError, match="did you mean '01_numbers'"):
        refresh_notebooks(_notebooks(tmp_path, GOOD), only=["01_number"], progress=False)


# --------------------------------------------------------------------------------------------
# small helpers


def test_find_notebooks_is_sorted_and_ignores_other_files(tmp_path):
    nb_dir = _notebooks(tmp_path, GOOD[::-1])
    (nb_dir / "scratch.ipynb").write_text("{}")
    (nb_dir / "1_bad.ipynb").write_text("{}")
    assert [p.name for p in find_notebooks(nb_dir)] == GOOD


def test_notebook_title_uses_first_heading():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# a comment"),
        nbformat.v4.new_markdown_cell("Intro\n\n## Sessions per user\n# Later"),
    ])
    assert notebook_title(nb) == "Sessions per user"
    assert notebook_title(nbformat.v4.new_notebook(), "fallback") == "fallback"


def test_strip_execution_metadata():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells[0].metadata.update(papermill={"status": "completed"}, execution={"x": 1}, tags=[])
    strip_execution_metadata(nb)
    assert "papermill" not in nb.metadata
    assert nb.cells[0].metadata == {}


def test_render_index_without_fingerprint_or_summary():
    page = render_index({"name": "demo", "parameters": {"seed": 1}, "notebooks": []})
    assert "Not recorded" in page and SUMMARY_MARKER in page and "<script" not in page


def test_render_index_escapes_values():
    page = render_index({"name": "<b>", "parameters": {"k": "<script>"}, "notebooks": []})
    assert "<script>" not in page and "&lt;b&gt;" in page


# --------------------------------------------------------------------------------------------
# runinfo


def test_fingerprint_frame_is_stable_and_sensitive():
    df = pd.DataFrame({"user_id": ["a", "b", "c"], "n": [1, 2, 3]})
    fp = fingerprint_frame(df)
    assert fp == fingerprint_frame(df.copy()) and fp["rows"] == 3
    changed = df.copy()
    changed.loc[1, "n"] = 20
    assert fingerprint_frame(changed)["sha256"] != fp["sha256"]
    assert fingerprint_frame(df[["n", "user_id"]])["sha256"] != fp["sha256"]
    assert fingerprint_frame(df.rename(columns={"n": "m"}))["sha256"] != fp["sha256"]
    assert fingerprint_frame(df.astype({"n": "float64"}))["sha256"] != fp["sha256"]


def test_fingerprint_frame_ignores_index_and_does_not_mutate():
    df = pd.DataFrame({"n": [1, 2]})
    before = df.copy()
    assert fingerprint_frame(df) == fingerprint_frame(df.set_axis([10, 11]))
    pd.testing.assert_frame_equal(df, before)


def test_fingerprint_frame_is_stable_across_processes():
    code = (
        "import pandas as pd; from segkit.runinfo import fingerprint_frame; "
        "print(fingerprint_frame(pd.DataFrame({'u': ['a', 'b'], 'n': [1, 2]}))['sha256'])"
    )
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint_frame(
        pd.DataFrame({"u": ["a", "b"], "n": [1, 2]})
    )["sha256"]


def test_fingerprint_frame_rejects_non_frames_and_unhashable_values():
    with pytest.raises(ParameterError, match="pandas DataFrame"):
        fingerprint_frame([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="Cannot fingerprint column 'tags'"):
        fingerprint_frame(pd.DataFrame({"tags": [[1], [2]]}))


def test_fingerprint_file(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc")
    fp = fingerprint_file(p)
    assert fp == {
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "bytes": 3,
    }
    with pytest.raises(ArtifactError, match="not an existing file"):
        fingerprint_file(tmp_path / "missing")


def test_package_versions_marks_missing_packages():
    versions = package_versions(["pandas", "python", "surely-not-a-package-xyz"])
    assert versions["pandas"] == pd.__version__
    assert versions["surely-not-a-package-xyz"] == "not installed"


def test_git_commit_outside_a_repo_is_unknown(tmp_path):
    assert git_commit(tmp_path) == {"commit": "unknown", "dirty": None}


def test_git_commit_reports_hash_and_dirty_flag(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    clean = git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{7,}", clean["commit"]) and clean["dirty"] is False
    (tmp_path / "f.txt").write_text("2")
    assert git_commit(tmp_path)["dirty"] is True


def test_every_assignment_of_a_committed_parameters_cell_is_a_declared_parameter():
    # papermill alone misses `name: str | None = None`; a parameter set's value must still reach it
    import nbformat

    from segkit.report import _assigned_names, _inspect

    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        plan = _inspect(path)
        cell = nbformat.read(path, as_version=4).cells[plan.parameters_cell].source
        assert set(_assigned_names(cell)) <= set(plan.declared), path.name
    assert _assigned_names("a: str | None = None\nb = 1\nc: int = 2") == ["a", "b", "c"]


def test_papermill_unknown_parameter_warning_is_filtered():
    import logging

    from segkit.report import _declared_filter

    make = lambda msg: logging.LogRecord("papermill", logging.WARNING, __file__, 1, msg, None, None)  # noqa: E731
    assert not _declared_filter(make("Passed unknown parameter: data_path"))
    assert _declared_filter(make("Executing notebook with kernel: python3"))
