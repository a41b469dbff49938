"""The book's build tools; run from the repository root, e.g. ``python -m tools.book_build``.

``book_sphinx_fixes`` is loaded by Sphinx as a local extension (``_config.yml``:
``sphinx.local_extensions``), not imported through this package.
"""
