"""Sphinx additions for the book (loaded via _config.yml `sphinx.local_extensions`).

* ``{book-exec-summary}`` directive: one sentence with the *measured* total
  execution time of the book's notebooks, from the same records as myst-nb's
  ``{nb-exec-table}`` (jupyter-cache execution data of this build).
  Used by book/running.md.
* De-duplicate the ``<script>`` tags of a page. With Sphinx 7.4, sphinx-thebe and
  sphinx-togglebutton each end up twice in every page's script list; the second
  copy of sphinx-thebe's inline ``const THEBE_JS_URL = ...`` then throws
  "Identifier 'THEBE_JS_URL' has already been declared" in every reader's
  console (tests/test_site_browser.py loads every page and fails on console errors).
* The provenance line under every page's title: the tinker SDK version the book is
  checked against (requirements.txt's pin) and what computed the page's outputs (the
  backend of this build, and the base model the page's setup cell names for it).
* Link previews: sphinxext-opengraph's site URL is the book's ``html.baseurl``.
"""

from __future__ import annotations

import ast
import functools
import html
import os
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

from tools.pages import page_cells


# --------------------------------------------------------------------------- #
# {book-exec-summary}
# --------------------------------------------------------------------------- #
class ExecSummaryNode(nodes.General, nodes.Element):
    """Placeholder, replaced once every notebook's execution data is known."""


class ExecSummary(SphinxDirective):
    has_content = False

    def run(self):
        from myst_nb.ext.execution_tables import METADATA_KEY
        from myst_nb.sphinx_ import NbMetadataCollector

        # same mark as {nb-exec-table}: myst-nb re-writes this page when a notebook re-executes
        NbMetadataCollector.set_doc_data(self.env, self.env.docname, METADATA_KEY, True)
        return [ExecSummaryNode()]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} minutes ({seconds:.0f} s)"


def exec_summary_text(exec_data: dict[str, dict], backend: str | None) -> str:
    runs = {d: v for d, v in exec_data.items() if v and v.get("runtime") is not None}
    if not runs:
        return "No notebook execution was recorded by this build."
    total = sum(v["runtime"] for v in runs.values())
    slowest = max(runs, key=lambda d: runs[d]["runtime"])
    failed = sorted(d for d, v in runs.items() if not v.get("succeeded", True))
    where = {
        "offline": "offline (tinker_offline, SmolLM2-135M on the CPU)",
        "tinker": "on Tinker (TINKER_API_KEY set)",
    }.get(backend or "", f"with backend {backend!r}" if backend else "")
    text = (
        f"Measured at this build, {where}: running all {len(runs)} notebooks took "
        f"{_duration(total)} in total; the longest was {slowest} "
        f"({runs[slowest]['runtime']:.0f} s)."
    )
    if failed:
        text += f" Failed: {', '.join(failed)}."
    return text


class ExecSummaryTransform(SphinxPostTransform):
    default_priority = 8  # like myst-nb's exec table: before reference resolution

    def run(self, **kwargs) -> None:
        from myst_nb.sphinx_ import NbMetadataCollector

        nodes_ = list(self.document.findall(ExecSummaryNode))
        if not nodes_:
            return
        data = {
            docname: meta.get("exec_data")
            for docname, meta in NbMetadataCollector.get_doc_data(self.env).items()
        }
        text = exec_summary_text(data, os.environ.get("TINKER_BOOK_BACKEND"))
        for node in nodes_:
            para = nodes.paragraph(classes=["book-exec-summary"])
            para += nodes.strong(text=text)
            node.replace_self(para)


# --------------------------------------------------------------------------- #
# Duplicate <script> tags
# --------------------------------------------------------------------------- #
def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for js in scripts:
        # the copies differ only in filename None vs "" (both: inline script),
        # which Sphinx's own de-duplication compares
        attrs = getattr(js, "attributes", {}) or {}
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    if len(unique) != len(scripts):
        scripts[:] = unique  # in place: later handlers (MathJax) append to this same list


# --------------------------------------------------------------------------- #
# The provenance line
# --------------------------------------------------------------------------- #
def base_models(code: str) -> dict[str, str]:
    """{"tinker": model, "offline": model} from a setup cell's ``if BACKEND == "tinker":``
    block (its BASE_MODEL assignments); empty when the code has none."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "BACKEND == 'tinker'":
            branches = {"tinker": node.body, "offline": node.orelse}
            return {
                backend: statement.value.value
                for backend, body in branches.items()
                for statement in body
                if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "BASE_MODEL"
            }
    return {}


def page_base_models(source: Path) -> dict[str, str]:
    for cell in page_cells(source):
        if cell.kind == "code" and (models := base_models(cell.source)):
            return models
    return {}


def provenance_text(tinker_version: str, backend: str, model: str, device: str, has_outputs: bool) -> str:
    """The line under a page's title, e.g. "Checked against tinker 0.38.0. This page's outputs
    were computed by HuggingFaceTB/SmolLM2-135M-Instruct, offline (tinker_offline) on a CPU."."""
    where = "on Tinker" if backend == "tinker" else f"offline (tinker_offline) on a {device.upper()}"
    whose = "this page's outputs" if has_outputs else "the outputs in this book"
    return f"Checked against tinker {tinker_version}. {whose.capitalize()} were computed by {model}, {where}."


@functools.cache
def _build_facts(srcdir: Path) -> tuple[str, str, str]:
    """(tinker version, backend, engine device) of this build: the same for every page."""
    from tinker_offline.model_store import compute_device, pinned_version

    backend = os.environ.get("TINKER_BOOK_BACKEND") or "offline"
    return pinned_version("tinker", srcdir / "requirements.txt"), backend, compute_device().type


def _add_provenance(app, pagename, templatename, context, doctree):
    if doctree is None or "body" not in context:
        return
    from tinker_offline import DEFAULT_BASE_MODEL

    tinker_version, backend, device = _build_facts(Path(app.srcdir))
    models = page_base_models(Path(app.env.doc2path(pagename)))
    fallback = DEFAULT_BASE_MODEL if backend == "offline" else "the base models each chapter names"
    text = provenance_text(tinker_version, backend, models.get(backend, fallback), device, has_outputs=bool(models))
    line = f'\n<p class="book-provenance">{html.escape(text)}</p>'
    body = context["body"]
    # right under the page's title (before it when a page has no h1)
    end_of_title = body.find("</h1>")
    context["body"] = line + body if end_of_title < 0 else body[: end_of_title + 5] + line + body[end_of_title + 5 :]


def _link_previews_use_the_baseurl(app, config):
    if not config.ogp_site_url:
        config.ogp_site_url = config.html_baseurl


def setup(app):
    app.add_node(ExecSummaryNode)
    app.add_directive("book-exec-summary", ExecSummary)
    app.add_post_transform(ExecSummaryTransform)
    # early: html-page-context is emitted with emit_firstresult, so a handler that
    # returns a template name stops the later ones (the duplicates are already there)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    app.connect("html-page-context", _add_provenance)
    app.connect("config-inited", _link_previews_use_the_baseurl)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
