"""Execute the analysis notebooks with one parameter set and publish self-contained HTML reports.

:func:`build_reports` runs the ``notebooks/NN_topic.ipynb`` in order with papermill, injecting
the values of one parameter set, and publishes ``reports/NAME/``: per notebook the executed
``.ipynb``, a stakeholder ``NN_topic.html`` without code and a ``NN_topic.code.html`` with code,
plus ``index.html`` and ``run.json`` holding the *run card* (parameters, data fingerprint,
versions, git commit, timings). The report folder is replaced only when every notebook succeeded.
A parameter set may run only some notebooks with ``report.notebooks`` (``["01", "02", "04"]``, see
:func:`select_notebooks`); the others are not executed and the index lists only those that ran.

:func:`refresh_notebooks` re-executes the committed notebooks in place with their own parameters,
so the outputs that nbval compares are brought up to date.

Examples
--------
>>> from segkit.report import build_reports            # doctest: +SKIP
>>> result = build_reports("parameters/default.yaml")  # doctest: +SKIP
[1/8] 01_overview ... ok (4.1 s)
...
>>> result.index_path                                        # doctest: +SKIP
PosixPath('/.../reports/default/index.html')
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, runtime_checkable

from segkit.errors import ParameterError, SegkitError, did_you_mean, format_allowed
from segkit.runinfo import git_commit, package_versions

if TYPE_CHECKING:  # pragma: no cover
    from nbconvert import HTMLExporter
    from nbformat import NotebookNode

__all__ = [
    "ReportError",
    "NotebookReport",
    "ReportResult",
    "build_reports",
    "refresh_notebooks",
    "find_notebooks",
    "select_notebooks",
    "notebook_title",
    "export_html",
    "render_index",
    "strip_execution_metadata",
]

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
FINGERPRINT_FILE = "data_fingerprint.json"
SUMMARY_MARKER = "<!-- segkit:summary -->"
SUMMARY_END_MARKER = "<!-- /segkit:summary -->"
_RUN_DIR_PARAM = "run_dir"
_SELECT_PARAM = "report_notebooks"  # flat key of Params.report.notebooks
_INJECTED_TAG = "injected-parameters"
_PARAMETERS_TAG = "parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# The lab template loads require.js, MathJax and mermaid from a CDN; a report must open offline,
# so these blocks are emptied. Markdown math then shows as its LaTeX source.
_OFFLINE_TEMPLATE = "segkit_offline_lab.html.j2"
_OFFLINE_TEMPLATE_SOURCE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
# Safety net for outputs that bring their own remote scripts or stylesheets (plotly, widgets).
_REMOTE_SCRIPT_RE = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script\s*>", re.IGNORECASE
)
_REMOTE_LINK_RE = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE
)


class ReportError(SegkitError):
    """A notebook could not be executed or the report could not be built.

    Attributes
    ----------
    notebook : str or None
        File name of the notebook that failed (``"03_segments.ipynb"``).
    cell_index : int or None
        0-based index of the failing cell in the *source* notebook (the injected-parameters cell
        is not counted).
    exec_count : int or None
        The failing cell's execution count (``In [n]``).
    source_line : str or None
        First non-empty line of the failing cell's source.
    ename, evalue : str or None
        Exception name and value raised inside the notebook.
    failed_dir : pathlib.Path or None
        Folder holding the executed notebooks of the failed run, for inspection.
    """

    def __init__(
        self,
        message: str,
        *,
        notebook: str | None = None,
        cell_index: int | None = None,
        exec_count: int | None = None,
        source_line: str | None = None,
        ename: str | None = None,
        evalue: str | None = None,
        failed_dir: Path | None = None,
    ):
        self.notebook = notebook
        self.cell_index = cell_index
        self.exec_count = exec_count
        self.source_line = source_line
        self.ename = ename
        self.evalue = evalue
        self.failed_dir = failed_dir
        super().__init__(message)


@dataclass(frozen=True)
class NotebookReport:
    """What :func:`build_reports` produced for one notebook.

    Attributes
    ----------
    notebook : str
        Source file name, e.g. ``"02_cleaning.ipynb"``.
    title : str
        The notebook's first markdown heading (its file stem when it has none).
    ipynb, html : pathlib.Path
        The executed notebook and the stakeholder HTML (code hidden) in the published folder.
    code_html : pathlib.Path or None
        The HTML with code, when requested.
    duration_s : float
        Execution time in seconds (kernel start included, HTML export excluded).
    injected : dict
        Parameters injected into the notebook (``run_dir`` included when declared).
    defaults : dict
        Parameters the notebook declares that the set does not define: name to the default
        source text from the notebook's parameters cell.
    """

    notebook: str
    title: str
    ipynb: Path
    html: Path
    code_html: Path | None
    duration_s: float
    injected: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportResult:
    """Outcome of :func:`build_reports`.

    Attributes
    ----------
    name : str
        Parameter set name; the report lives in ``reports_dir / name``.
    report_dir, index_path, run_dir : pathlib.Path
        Published report folder, its ``index.html``, and the artifacts folder the notebooks used.
    notebooks : tuple of NotebookReport
        One entry per notebook, in execution order.
    unused_parameters : tuple of str
        Flat keys of the parameter set that no notebook declares.
    run_card : dict
        The run card, as written to ``run.json``.
    duration_s : float
        Wall time of the whole build in seconds.
    """

    name: str
    report_dir: Path
    index_path: Path
    run_dir: Path
    notebooks: tuple[NotebookReport, ...]
    unused_parameters: tuple[str, ...]
    run_card: dict[str, Any]
    duration_s: float


@runtime_checkable
class ParamsLike(Protocol):
    """The part of :class:`segkit.params.Params` that reports use."""

    name: str
    seed: int

    def flat(self) -> Mapping[str, Any]: ...  # pragma: no cover

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...  # pragma: no cover


# --------------------------------------------------------------------------------------------
# small public helpers


def find_notebooks(notebooks_dir: str | os.PathLike[str] = "notebooks") -> list[Path]:
    """Return the report notebooks ``NN_topic.ipynb`` of a folder, sorted by name.

    Parameters
    ----------
    notebooks_dir : path-like, default="notebooks"

    Returns
    -------
    list of pathlib.Path
        Absolute paths.

    Raises
    ------
    ReportError
        If the folder does not exist or holds no ``NN_*.ipynb`` notebook.

    Examples
    --------
    >>> [p.name for p in find_notebooks("notebooks")]  # doctest: +SKIP
    ['01_overview.ipynb', '02_cleaning.ipynb']
    """
    folder = Path(notebooks_dir).resolve()
    if not folder.is_dir():
        raise ReportError(f"Notebook folder {str(folder)!r} does not exist")
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if not found:
        raise ReportError(f"No notebooks matching {NOTEBOOK_GLOB!r} in {str(folder)!r}")
    return found


def select_notebooks(
    notebooks: Sequence[Path],
    wanted: Sequence[str] | None,
    *,
    name: str = "report.notebooks",
) -> list[Path]:
    """Pick the notebooks a parameter set asks for, keeping their name order.

    An entry matches a notebook by its number (``"02"``, the part before the first ``_``), its
    stem (``"02_cleaning"``) or its file name (``"02_cleaning.ipynb"``). Entries may overlap; each
    notebook runs at most once, and always in name order (later notebooks read the artifacts of
    earlier ones), whatever the order of ``wanted``.

    Parameters
    ----------
    notebooks : sequence of pathlib.Path
        The available notebooks, as returned by :func:`find_notebooks`.
    wanted : sequence of str or None
        Numbers or names to keep; None keeps every notebook.
    name : str, default="report.notebooks"
        Parameter name used in error messages.

    Returns
    -------
    list of pathlib.Path
        The selected notebooks, in name order.

    Raises
    ------
    ParameterError
        If ``wanted`` is empty, holds something that is not a string, or names a notebook that
        does not exist (every such entry is listed with a did-you-mean hint, followed by the
        available notebooks).

    Examples
    --------
    >>> from pathlib import Path
    >>> nbs = [Path("01_event_taxonomy.ipynb"), Path("02_cleaning.ipynb"), Path("03_segments.ipynb")]
    >>> [p.name for p in select_notebooks(nbs, ["03", "01_event_taxonomy"])]
    ['01_event_taxonomy.ipynb', '03_segments.ipynb']
    """
    if wanted is None:
        return list(notebooks)
    stems = [p.stem for p in notebooks]
    if isinstance(wanted, str) or not isinstance(wanted, Sequence):
        raise ParameterError(name, wanted, message=f"Parameter {name!r} got {wanted!r}; expected a list of "
                             f"notebook numbers or names such as ['01', '02'], or None for all. Available: "
                             f"{format_allowed(stems)}")
    if len(wanted) == 0:
        raise ParameterError(name, list(wanted), stems, message=f"Parameter {name!r} is an empty list, which "
                             f"selects no notebook; leave it unset (null) to run all. Available: {format_allowed(stems)}")
    keys: dict[str, set[Path]] = {}
    for path in notebooks:
        for key in (path.stem.split("_", 1)[0], path.stem, path.name):
            keys.setdefault(key, set()).add(path)
    chosen: set[Path] = set()
    problems = []
    for entry in wanted:
        if not isinstance(entry, str):
            problems.append(f"{entry!r} is not a string (quote numbers in YAML: '01', not 01)")
        elif entry.strip() in keys:
            chosen |= keys[entry.strip()]
        else:
            problems.append(f"{entry!r} matches no notebook;{did_you_mean(entry, keys)}")
    if problems:
        bad = next(e for e in wanted if not isinstance(e, str) or e.strip() not in keys)
        where = str(Path(notebooks[0]).parent) if notebooks else "the notebook folder"
        raise ParameterError(
            name,
            bad,
            stems,
            message=f"Parameter {name!r}: " + "; ".join(problems)
            + f". Available in {where!r}: {format_allowed(stems, limit=20)}",
        )
    return [p for p in notebooks if p in chosen]


def notebook_title(nb: NotebookNode, default: str = "") -> str:
    """Return the text of the first markdown heading of a notebook, or ``default``.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Sessions\\ntext")])
    >>> notebook_title(nb)
    'Sessions'
    """
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m and m.group(1):
                return m.group(1)
    return default


def strip_execution_metadata(nb: NotebookNode) -> NotebookNode:
    """Remove papermill's and nbclient's run metadata (timestamps, durations) in place.

    Drops ``metadata.papermill`` of the notebook and of every cell, the per-cell
    ``metadata.execution`` timestamps, empty ``tags`` lists and papermill's error-marker cells,
    so that re-executing
    an unchanged notebook gives a small diff.

    Returns
    -------
    nbformat.NotebookNode
        The same notebook, for chaining.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    >>> nb.cells[0].metadata["papermill"] = {"duration": 0.1}
    >>> "papermill" in strip_execution_metadata(nb).cells[0].metadata
    False
    """
    nb.metadata.pop("papermill", None)
    nb.cells = [c for c in nb.cells if _ERROR_MARKER_TAG not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]  # papermill adds an empty list to every cell
    return nb


_EXPORTERS: dict[bool, HTMLExporter] = {}


def _exporter(include_code: bool) -> HTMLExporter:
    if include_code not in _EXPORTERS:
        from jinja2 import DictLoader
        from nbconvert import HTMLExporter
        from nbconvert.preprocessors import TagRemovePreprocessor

        exporter = HTMLExporter(
            template_name="lab",
            extra_loaders=[DictLoader({_OFFLINE_TEMPLATE: _OFFLINE_TEMPLATE_SOURCE})],
            template_file=_OFFLINE_TEMPLATE,
        )
        exporter.embed_images = True
        exporter.mathjax_url = ""
        exporter.require_js_url = ""
        if not include_code:
            exporter.exclude_input = True
            exporter.exclude_input_prompt = True
            exporter.exclude_output_prompt = True
            exporter.register_preprocessor(
                TagRemovePreprocessor(
                    remove_cell_tags={_INJECTED_TAG, _PARAMETERS_TAG, _ERROR_MARKER_TAG, "remove_cell"},
                    remove_input_tags={"remove_input", "hide-input"},
                    remove_all_outputs_tags={"remove_output"},
                    enabled=True,
                ),
                enabled=True,
            )
        _EXPORTERS[include_code] = exporter
    return _EXPORTERS[include_code]


def _make_offline(body: str) -> str:
    body = _REMOTE_SCRIPT_RE.sub("", body)
    return _REMOTE_LINK_RE.sub("", body)


def export_html(
    notebook: str | os.PathLike[str] | NotebookNode,
    out_path: str | os.PathLike[str],
    *,
    include_code: bool = False,
    title: str | None = None,
    resources_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Render an executed notebook as one self-contained HTML file.

    Images are embedded as base64, the lab template's CDN scripts (require.js, MathJax,
    mermaid) are left out and any remaining ``<script src="http...">`` is stripped, so the file
    opens offline.

    Parameters
    ----------
    notebook : path-like or nbformat.NotebookNode
        The executed notebook.
    out_path : path-like
        Where to write the HTML.
    include_code : bool, default=False
        False gives the stakeholder version: inputs, prompts and the ``parameters`` /
        ``injected-parameters`` cells are hidden; cells tagged ``remove_cell``,
        ``remove_input`` (or ``hide-input``) and ``remove_output`` are honoured.
    title : str or None, default=None
        Page title; defaults to the notebook's first heading.
    resources_dir : path-like or None, default=None
        Folder that relative image paths in markdown resolve against (the notebook's folder).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Examples
    --------
    >>> export_html("reports/default/01_overview.ipynb", "/tmp/01.html")  # doctest: +SKIP
    PosixPath('/tmp/01.html')
    """
    import nbformat

    if isinstance(notebook, (str, os.PathLike)):
        src = Path(notebook)
        nb = nbformat.read(src, as_version=4)
        resources_dir = resources_dir or src.parent
        default_title = src.stem
    else:
        nb = nbformat.from_dict(json.loads(json.dumps(notebook)))
        default_title = Path(out_path).stem
    nb.metadata["title"] = title or notebook_title(nb, default_title)
    resources: dict[str, Any] = {"metadata": {"name": nb.metadata["title"]}}
    if resources_dir is not None:
        resources["metadata"]["path"] = str(resources_dir)
    body, _ = _exporter(include_code).from_notebook_node(nb, resources=resources)
    out = Path(out_path)
    out.write_text(_make_offline(body), encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------
# index page


_INDEX_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:62rem;margin:2rem auto;
padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
.sub{color:#59636e;margin-top:0}table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}a{color:#0969da}
.muted{color:#59636e}.warn{color:#9a6700}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_value(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(seconds, 60)
    return f"{int(minutes)} min {sec:.0f} s"


def _table(rows: Iterable[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    head = f"<tr><th>{_e(header[0])}</th><th>{_e(header[1])}</th></tr>" if header else ""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{head}{body}</table>"


def render_index(run_card: Mapping[str, Any], summary_html: str | None = None) -> str:
    """Render the report's ``index.html``: notebook links, a summary slot and the run card.

    The page is self-contained (inline CSS, no scripts). The stakeholder summary goes between
    ``<!-- segkit:summary -->`` and ``<!-- /segkit:summary -->``; the section is left empty when
    ``summary_html`` is None.

    Parameters
    ----------
    run_card : mapping
        As built by :func:`build_reports` (see ``run.json``).
    summary_html : str or None, default=None
        Trusted HTML fragment inserted verbatim into the summary section.

    Returns
    -------
    str
        The HTML document.

    Examples
    --------
    >>> card = {"name": "demo", "notebooks": [], "parameters": {"seed": 1}}
    >>> "<!-- segkit:summary -->" in render_index(card)
    True
    """
    name = run_card.get("name", "")
    rows = []
    for nb in run_card.get("notebooks", []):
        link = f'<a href="{_e(nb["html"])}">{_e(nb["title"])}</a>'
        code = f'<a href="{_e(nb["code_html"])}">with code</a>' if nb.get("code_html") else ""
        ipynb = f'<a href="{_e(nb["ipynb"])}">notebook</a>' if nb.get("ipynb") else ""
        rows.append(
            f"<tr><td><code>{_e(nb['notebook'])}</code></td><td>{link}</td>"
            f"<td>{' · '.join(x for x in (code, ipynb) if x)}</td>"
            f'<td class="num">{_e(_fmt_seconds(nb.get("duration_s", 0.0)))}</td></tr>'
        )
    notebooks_table = (
        "<table><tr><th>File</th><th>Report</th><th>Also</th><th>Runtime</th></tr>"
        + "".join(rows)
        + "</table>"
    )

    skipped = run_card.get("notebooks_skipped") or []
    if skipped:
        notebooks_table += (
            '<p class="muted">Not run for this parameter set (<code>report.notebooks</code>): '
            + ", ".join(f"<code>{_e(n)}</code>" for n in skipped)
            + "</p>"
        )

    params = run_card.get("parameters", {})
    params_table = _table(
        ((f"<code>{_e(k)}</code>", f"<code>{_e(_fmt_value(v))}</code>") for k, v in params.items()),
        ("Key", "Value"),
    )
    extra = []
    unused = run_card.get("unused_parameters") or []
    if unused:
        extra.append(
            '<p class="muted">Keys of the set that no notebook declares: '
            + ", ".join(f"<code>{_e(k)}</code>" for k in unused)
            + "</p>"
        )
    defaults = [
        (nb["notebook"], k, v)
        for nb in run_card.get("notebooks", [])
        for k, v in (nb.get("defaults") or {}).items()
    ]
    if defaults:
        extra.append(
            '<p class="warn">Notebook parameters not in the set (the notebook default was used): '
            + ", ".join(f"<code>{_e(n)}: {_e(k)} = {_e(v)}</code>" for n, k, v in defaults)
            + "</p>"
        )

    fp = run_card.get("data_fingerprint")
    if isinstance(fp, Mapping) and fp:
        data_rows = [(_e(k), f"<code>{_e(_fmt_value(v) if not isinstance(v, str) else v)}</code>")
                     for k, v in fp.items()]
        data_html = _table(data_rows)
    else:
        data_html = (
            f'<p class="muted">Not recorded (no <code>{_e(FINGERPRINT_FILE)}</code> '
            "in the run folder).</p>"
        )

    git = run_card.get("git") or {}
    dirty = git.get("dirty")
    dirty_txt = {True: " (uncommitted changes)", False: " (clean)", None: ""}[dirty]
    prov_rows = [
        ("Parameter set", f"<code>{_e(name)}</code>"),
        ("Seed", f"<code>{_e(run_card.get('seed', ''))}</code>"),
        ("Git commit", f"<code>{_e(git.get('commit', 'unknown'))}</code>{_e(dirty_txt)}"),
        ("Started (UTC)", _e(run_card.get("started_at", ""))),
        ("Total duration", _e(_fmt_seconds(float(run_card.get("duration_s", 0.0))))),
        ("Run folder", f"<code>{_e(run_card.get('run_dir', ''))}</code>"),
    ]
    versions = run_card.get("packages", {})
    versions_table = _table(((_e(k), f"<code>{_e(v)}</code>") for k, v in versions.items()),
                            ("Package", "Version"))

    summary = summary_html or ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>segkit report: {_e(name)}</title>
<style>{_INDEX_CSS}</style>
</head>
<body>
<h1>Behavioral segmentation report</h1>
<p class="sub">Parameter set <code>{_e(name)}</code> · run {_e(run_card.get("started_at", ""))} ·
commit <code>{_e(git.get("commit", "unknown"))}</code>{_e(dirty_txt)}</p>
<section id="summary">
{SUMMARY_MARKER}
{summary}
{SUMMARY_END_MARKER}
</section>
<h2>Reports</h2>
{notebooks_table}
<h2 id="run-card">Run card</h2>
{_table(prov_rows)}
<h3>Parameters</h3>
{params_table}
{''.join(extra)}
<h3>Data</h3>
{data_html}
<h3>Environment</h3>
{versions_table}
<p class="muted">The same information is in <a href="run.json">run.json</a>.</p>
</body>
</html>
"""


# --------------------------------------------------------------------------------------------
# execution


def _resolve_params(params: Any) -> tuple[ParamsLike, Path | None]:
    if isinstance(params, (str, os.PathLike)):
        from segkit import params as params_module  # lazy: params imports pydantic and yaml

        path = Path(params)
        loaded = params_module.load_params(path)
        if hasattr(params_module, "validate_parameter_dir"):
            params_module.validate_parameter_dir(path.parent)
        return loaded, path.resolve()
    if isinstance(params, ParamsLike):
        return params, None
    raise ParameterError(
        "params", type(params).__name__, "a path to a parameter file or a Params object"
    )


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 100 else line[:97] + "..."
    return ""


def _parameters_cell_index(nb: NotebookNode) -> int:
    for i, cell in enumerate(nb.cells):
        if _PARAMETERS_TAG in cell.metadata.get("tags", []):
            return i
    return -1


@dataclass
class _Plan:
    path: Path
    declared: dict[str, dict[str, Any]]
    parameters_cell: int
    injected: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)


def _inspect(path: Path) -> _Plan:
    import nbformat
    import papermill

    try:
        nb = nbformat.read(path, as_version=4)
        declared = papermill.inspect_notebook(path)
    except Exception as exc:  # unreadable JSON, unknown kernel/language
        raise ReportError(
            f"Cannot read the parameters of notebook {path.name!r}: {type(exc).__name__}: {exc}",
            notebook=path.name,
        ) from exc
    idx = _parameters_cell_index(nb)
    if idx < 0:
        raise ReportError(
            f"Notebook {path.name!r} has no cell tagged {_PARAMETERS_TAG!r}; every report "
            "notebook declares its parameters (and run_dir) in one tagged cell",
            notebook=path.name,
        )
    # papermill's parser skips annotated names whose type is not a single word (``str | None``):
    # every assignment of the cell is a parameter, so read the names with the ast as well
    for name in _assigned_names(nb.cells[idx].source):
        declared.setdefault(name, {"name": name, "inferred_type_name": "None", "default": None, "help": ""})
    return _Plan(path=path, declared=declared, parameters_cell=idx)


def _declared_filter(record: logging.LogRecord) -> bool:
    """Drop papermill's "Passed unknown parameter" warning: segkit injects only declared names
    (papermill's own parser misses annotations such as ``str | None``, see :func:`_inspect`)."""
    return not str(record.getMessage()).startswith("Passed unknown parameter")


def _assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a parameters cell (plain and annotated assignments)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _failure_details(
    exc: BaseException, executed: Path, plan: _Plan, injected: bool
) -> dict[str, Any]:
    """Locate the failing cell; indices refer to the source notebook."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        idx = exc.cell_index
        if injected and idx is not None and idx > plan.parameters_cell:
            idx -= 1  # papermill inserted the injected-parameters cell after the parameters cell
        return {
            "cell_index": idx,
            "exec_count": exc.exec_count,
            "source_line": _first_line(exc.source or ""),
            "ename": exc.ename,
            "evalue": str(exc.evalue),
        }
    details: dict[str, Any] = {
        "cell_index": None,
        "exec_count": None,
        "source_line": None,
        "ename": type(exc).__name__,
        "evalue": str(exc).strip().splitlines()[0] if str(exc).strip() else "",
    }
    # Timeouts and dead kernels: the failing cell is the last one papermill started.
    try:
        import nbformat

        nb = nbformat.read(executed, as_version=4)
    except Exception:  # noqa: BLE001 - the output may not exist yet
        return details
    shift = 0
    last: tuple[int, Any] | None = None
    for i, cell in enumerate(nb.cells):
        if _INJECTED_TAG in cell.metadata.get("tags", []):
            shift = 1
            continue
        if cell.metadata.get("papermill", {}).get("start_time"):
            last = (i - shift, cell)
    if last is not None:
        idx, cell = last
        details.update(
            cell_index=idx,
            exec_count=cell.get("execution_count"),
            source_line=_first_line(cell.source),
        )
    return details


def _failure_message(notebook: str, d: Mapping[str, Any]) -> str:
    where = ""
    if d.get("cell_index") is not None:
        where = f" in cell {d['cell_index']} (counting from 0"
        where += f"; In [{d['exec_count']}])" if d.get("exec_count") is not None else ")"
    line = f": {d['source_line']}" if d.get("source_line") else ""
    return f"Notebook {notebook!r} failed{where}{line}\n  {d['ename']}: {d['evalue']}"


_INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@contextmanager
def _kernel_env() -> Iterator[None]:
    """Environment the kernels inherit while notebooks run.

    ``PYTHONHASHSEED`` defaults to ``0`` (reproducible set/dict order). ``MPLBACKEND`` is forced to
    the inline backend: ipykernel keeps any backend already set, and ``MPLBACKEND=Agg`` (as
    exported by the Makefile for tests) would make ``plt.show()`` display nothing in a kernel.
    """
    wanted = {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED") or "0",
              "MPLBACKEND": _INLINE_BACKEND}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _execute(
    plan: _Plan,
    output: Path,
    parameters: Mapping[str, Any] | None,
    *,
    kernel_name: str,
    cwd: Path,
    cell_timeout: float | None,
) -> None:
    import papermill
    import zmq
    from traitlets.config import Config

    # Provision CurveZMQ keys when possible: ipykernel otherwise warns "Kernel is running over
    # TCP without encryption" on every start.
    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    logging.getLogger("papermill").addFilter(_declared_filter)
    papermill.execute_notebook(
        str(plan.path),
        str(output),
        parameters=dict(parameters) if parameters else None,
        kernel_name=kernel_name,
        cwd=str(cwd),
        execution_timeout=cell_timeout,
        progress_bar=False,
        log_output=False,
        config=config,
        # All outputs are collected when the last cell is idle; killing the kernel then saves
        # ~0.2 s and avoids the "KeyboardInterrupt caught in kernel" noise of a graceful stop.
        shutdown_kernel="immediate",
    )


def _read_fingerprint(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / FINGERPRINT_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"unreadable {FINGERPRINT_FILE}: {exc}"}
    return value if isinstance(value, dict) else {"value": value}


def build_reports(
    params: str | os.PathLike[str] | ParamsLike,
    *,
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    reports_dir: str | os.PathLike[str] = "reports",
    runs_dir: str | os.PathLike[str] = "runs",
    cell_timeout: float | None = 600,
    kernel_name: str = "python3",
    progress: bool = True,
    code_html: bool = True,
    summary_html: str | Callable[[Path], str | None] | None = None,
) -> ReportResult:
    """Execute the report notebooks with one parameter set and publish ``reports/NAME/``.

    Steps: load the parameter set (and validate every set in its folder), select the notebooks
    ``NN_*.ipynb`` it asks for (``report.notebooks``, flat key ``report_notebooks``; all when
    unset; see :func:`select_notebooks`) and inspect each selected notebook's ``parameters`` cell
    before anything runs; clear ``runs_dir/NAME``; execute the selected notebooks in name order
    with papermill, each in a fresh kernel started in
    ``notebooks_dir``, injecting only the keys the notebook declares plus ``run_dir``; render each
    to HTML; write ``index.html`` and ``run.json``. Everything is staged in
    ``reports_dir/.NAME.partial/`` and moved to ``reports_dir/NAME/`` only when all notebooks
    succeeded. The index page and ``run.json`` list only the notebooks that ran; the run card
    also records the selection (``notebooks_selected``) and the notebooks left out
    (``notebooks_skipped``).

    Parameters
    ----------
    params : path-like or Params
        A parameter file (loaded with :func:`segkit.params.load_params`) or an object with
        ``name``, ``seed``, ``flat()`` and ``model_dump(mode="json")``.
    notebooks_dir : path-like, default="notebooks"
        Folder of the notebooks; also the kernels' working directory.
    reports_dir : path-like, default="reports"
        The report is published in ``reports_dir / params.name``.
    runs_dir : path-like, default="runs"
        Artifacts go to ``runs_dir / params.name`` (passed to notebooks as ``run_dir``,
        absolute). The folder is emptied first.
    cell_timeout : float or None, default=600
        Seconds one cell may run; None means no limit.
    kernel_name : str, default="python3"
        Jupyter kernel to execute with.
    progress : bool, default=True
        Print one line per notebook, e.g. ``[2/8] 02_cleaning ... ok (12.3 s)``.
    code_html : bool, default=True
        Also write ``NN_topic.code.html`` with the code shown.
    summary_html : str, callable or None, default=None
        Stakeholder summary for the index page: an HTML fragment, or a function called with the
        run folder after all notebooks succeeded that returns one.

    Returns
    -------
    ReportResult

    Raises
    ------
    ParameterError
        If the parameter file (or another set in its folder) is invalid, the set's name is not
        usable as a folder name, or ``report.notebooks`` names a notebook that does not exist
        (with a did-you-mean hint and the available notebooks).
    ReportError
        If a notebook lacks a ``parameters`` cell or fails. The message names the notebook, the
        failing cell and the exception; the previous ``reports_dir/NAME`` is left untouched and
        the executed notebooks of the failed run are kept in ``reports_dir/.NAME.failed/``.

    Examples
    --------
    >>> result = build_reports("parameters/default.yaml")  # doctest: +SKIP
    [1/2] 01_overview ... ok (3.2 s)
    [2/2] 02_cleaning ... ok (5.9 s)
    >>> result.index_path.name                                 # doctest: +SKIP
    'index.html'
    """
    import nbformat

    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    p, params_path = _resolve_params(params)
    name = str(p.name)
    if not _NAME_RE.match(name):
        raise ParameterError(
            "name", name, "letters, digits, '_', '-' and '.', not starting with '.' or '-'"
        )
    flat = dict(p.flat())

    nb_dir = Path(notebooks_dir).resolve()
    rep_dir = Path(reports_dir).resolve()
    run_dir = (Path(runs_dir) / name).resolve()
    final_dir = rep_dir / name
    staging = rep_dir / f".{name}.partial"
    failed_dir = rep_dir / f".{name}.failed"

    available = find_notebooks(nb_dir)
    selection = flat.get(_SELECT_PARAM)
    selected = select_notebooks(available, selection)
    skipped = [path.name for path in available if path not in selected]
    plans = [_inspect(path) for path in selected]
    declared_anywhere: set[str] = set()
    for plan in plans:
        declared_anywhere.update(plan.declared)
        plan.injected = {k: flat[k] for k in plan.declared if k in flat and k != _RUN_DIR_PARAM}
        if _RUN_DIR_PARAM in plan.declared:
            plan.injected[_RUN_DIR_PARAM] = str(run_dir)
        plan.defaults = {
            k: str(v.get("default"))
            for k, v in plan.declared.items()
            if k not in flat and k != _RUN_DIR_PARAM
        }
    unused = tuple(sorted(k for k in flat if k not in declared_anywhere and k != _SELECT_PARAM))
    git = git_commit(nb_dir)

    _rmtree(staging)
    staging.mkdir(parents=True)
    _rmtree(run_dir)
    run_dir.mkdir(parents=True)

    results: list[NotebookReport] = []
    n = len(plans)
    with _kernel_env():
        for i, plan in enumerate(plans, 1):
            stem = plan.path.stem
            out_nb = staging / plan.path.name
            if progress:
                print(f"[{i}/{n}] {stem} ...", end=" ", flush=True)
            t0 = time.perf_counter()
            try:
                _execute(plan, out_nb, plan.injected, kernel_name=kernel_name, cwd=nb_dir,
                         cell_timeout=cell_timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is reported the same way
                if progress:
                    print(f"FAILED ({time.perf_counter() - t0:.1f} s)", flush=True)
                _fail(exc, plan, out_nb, staging, failed_dir, final_dir, nb_dir)
            duration = time.perf_counter() - t0
            if progress:
                print(f"ok ({duration:.1f} s)", flush=True)
            try:
                executed = nbformat.read(out_nb, as_version=4)
                title = notebook_title(executed, stem)
                html_path = export_html(executed, staging / f"{stem}.html", title=title,
                                        resources_dir=nb_dir)
                code_path = (
                    export_html(executed, staging / f"{stem}.code.html", include_code=True,
                                title=title, resources_dir=nb_dir)
                    if code_html
                    else None
                )
            except Exception as exc:  # noqa: BLE001 - nbconvert/jinja errors of any kind
                _rmtree(failed_dir)
                staging.rename(failed_dir)
                raise ReportError(
                    f"Notebook {plan.path.name!r} ran but could not be rendered to HTML: "
                    f"{type(exc).__name__}: {exc}. Nothing was published; the executed notebooks "
                    f"are in {str(failed_dir)!r}.",
                    notebook=plan.path.name,
                    failed_dir=failed_dir,
                ) from exc
            results.append(
                NotebookReport(
                    notebook=plan.path.name,
                    title=title,
                    ipynb=final_dir / out_nb.name,
                    html=final_dir / html_path.name,
                    code_html=None if code_path is None else final_dir / code_path.name,
                    duration_s=round(duration, 3),
                    injected=dict(plan.injected),
                    defaults=dict(plan.defaults),
                )
            )

    summary = summary_html(run_dir) if callable(summary_html) else summary_html
    duration_total = time.perf_counter() - t_start
    run_card: dict[str, Any] = {
        "name": name,
        "seed": p.seed,
        "parameters_file": None if params_path is None else str(params_path),
        "parameters": flat,
        "parameters_full": p.model_dump(mode="json"),
        "unused_parameters": list(unused),
        "data_fingerprint": _read_fingerprint(run_dir),
        "segkit_version": package_versions(["segkit"])["segkit"],
        "packages": package_versions(),
        "git": git,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(duration_total, 3),
        "run_dir": str(run_dir),
        "kernel_name": kernel_name,
        "notebooks_selected": None if selection is None else list(selection),
        "notebooks_skipped": skipped,
        "notebooks": [
            {
                "notebook": r.notebook,
                "title": r.title,
                "ipynb": r.ipynb.name,
                "html": r.html.name,
                "code_html": None if r.code_html is None else r.code_html.name,
                "duration_s": r.duration_s,
                "injected": sorted(r.injected),
                "defaults": r.defaults,
            }
            for r in results
        ],
    }
    (staging / "run.json").write_text(
        json.dumps(run_card, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    (staging / "index.html").write_text(render_index(run_card, summary), encoding="utf-8")

    _publish(staging, final_dir)
    _rmtree(failed_dir)
    if progress:
        print(f"report: {final_dir / 'index.html'} ({_fmt_seconds(duration_total)})", flush=True)
    return ReportResult(
        name=name,
        report_dir=final_dir,
        index_path=final_dir / "index.html",
        run_dir=run_dir,
        notebooks=tuple(results),
        unused_parameters=unused,
        run_card=run_card,
        duration_s=round(duration_total, 3),
    )


def _publish(staging: Path, final_dir: Path) -> None:
    """Swap the staged folder in; the old report is restored if the move fails."""
    old = final_dir.with_name(f".{final_dir.name}.old")
    _rmtree(old)
    if final_dir.exists():
        final_dir.rename(old)
    try:
        staging.rename(final_dir)
    except OSError:
        if old.exists() and not final_dir.exists():
            old.rename(final_dir)
        raise
    _rmtree(old)


def _fail(
    exc: BaseException,
    plan: _Plan,
    out_nb: Path,
    staging: Path,
    failed_dir: Path,
    final_dir: Path,
    nb_dir: Path,
) -> NoReturn:
    details = _failure_details(exc, out_nb, plan, injected=bool(plan.injected))
    message = _failure_message(plan.path.name, details)
    inspect_hint = ""
    if out_nb.exists():
        try:
            code = export_html(out_nb, staging / f"{plan.path.stem}.code.html", include_code=True,
                               resources_dir=nb_dir)
            inspect_hint = f" (open {code.name})"
        except Exception:  # noqa: BLE001 - the hint is best effort
            inspect_hint = f" (see {out_nb.name})"
    kept = (
        f"\nThe report in {str(final_dir)!r} was left as it was."
        if final_dir.exists()
        else f"\nNo report was published in {str(final_dir)!r}."
    )
    message += (
        f"{kept} The executed notebooks of this run are in {str(failed_dir)!r}{inspect_hint}."
    )
    (staging / "FAILED.txt").write_text(message + "\n", encoding="utf-8")
    _rmtree(failed_dir)
    staging.rename(failed_dir)
    raise ReportError(message, notebook=plan.path.name, failed_dir=failed_dir, **details) from exc


def refresh_notebooks(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    kernel_name: str = "python3",
    cell_timeout: float | None = 600,
    only: Sequence[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Re-execute the committed notebooks in place with their own parameters.

    Each notebook runs in a fresh kernel started in ``notebooks_dir``, in name order, with no
    parameters injected (``run_dir`` keeps the default written in its parameters cell). The
    outputs are written back only when *every* selected notebook succeeded, with papermill's
    and nbclient's timing metadata removed so the diff shows only changed outputs.

    Parameters
    ----------
    notebooks_dir : path-like, default="notebooks"
    kernel_name : str, default="python3"
    cell_timeout : float or None, default=600
        Seconds one cell may run; None means no limit.
    only : sequence of str or None, default=None
        Refresh only these notebooks, by number, stem or file name (``"02"``, ``"02_cleaning"``);
        see :func:`select_notebooks`.
    progress : bool, default=True
        Print one line per notebook.

    Returns
    -------
    list of pathlib.Path
        The notebooks that were rewritten.

    Raises
    ------
    ParameterError
        If ``only`` names a notebook that does not exist.
    ReportError
        If a notebook fails; no notebook is modified and the failed output is kept in a
        temporary folder named in the message.

    Examples
    --------
    >>> refresh_notebooks("notebooks", only=["01_overview"])  # doctest: +SKIP
    [1/1] 01_overview ... ok (3.0 s)
    [PosixPath('.../notebooks/01_overview.ipynb')]
    """
    import nbformat

    nb_dir = Path(notebooks_dir).resolve()
    notebooks = select_notebooks(find_notebooks(nb_dir), only, name="only")
    plans = [_inspect(path) for path in notebooks]

    tmp = Path(tempfile.mkdtemp(prefix="segkit-refresh-"))
    refreshed: list[tuple[Path, NotebookNode]] = []
    with _kernel_env():
        for i, plan in enumerate(plans, 1):
            out_nb = tmp / plan.path.name
            if progress:
                print(f"[{i}/{len(plans)}] {plan.path.stem} ...", end=" ", flush=True)
            t0 = time.perf_counter()
            try:
                _execute(plan, out_nb, None, kernel_name=kernel_name, cwd=nb_dir,
                         cell_timeout=cell_timeout)
            except Exception as exc:  # noqa: BLE001
                if progress:
                    print(f"FAILED ({time.perf_counter() - t0:.1f} s)", flush=True)
                details = _failure_details(exc, out_nb, plan, injected=False)
                message = (
                    _failure_message(plan.path.name, details)
                    + f"\nNo notebook was modified. The failed output is {str(out_nb)!r}."
                )
                raise ReportError(message, notebook=plan.path.name, failed_dir=tmp,
                                  **details) from exc
            if progress:
                print(f"ok ({time.perf_counter() - t0:.1f} s)", flush=True)
            refreshed.append((plan.path, strip_execution_metadata(nbformat.read(out_nb, 4))))

    for path, nb in refreshed:
        staged = path.with_name(f".{path.name}.tmp")
        nbformat.write(nb, staged)
        os.replace(staged, path)
    shutil.rmtree(tmp, ignore_errors=True)
    return [path for path, _ in refreshed]
