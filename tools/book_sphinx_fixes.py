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
"""

from __future__ import annotations

import os

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective


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


def setup(app):
    app.add_node(ExecSummaryNode)
    app.add_directive("book-exec-summary", ExecSummary)
    app.add_post_transform(ExecSummaryTransform)
    # early: html-page-context is emitted with emit_firstresult, so a handler that
    # returns a template name stops the later ones (the duplicates are already there)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
