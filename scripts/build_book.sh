#!/usr/bin/env bash
# Build the book into _build/html. Offline by default (TINKER_BOOK_BACKEND=offline).
#
#   bash scripts/build_book.sh                 # offline build (tinker_offline + local model)
#   bash scripts/build_book.sh --fresh         # also wipe the notebook cache first
#   bash scripts/build_book.sh --path-output D # build into D/_build instead of ./_build
#   TINKER_API_KEY=... bash scripts/build_book.sh --tinker   # against the real Tinker service
#   bash scripts/build_book.sh --no-pdf        # without _build/html/book.pdf (no chromium needed)
#
# Warnings are errors (-W -n --keep-going); a failed notebook fails the build.
# The logic lives in tools/book_build.py (run as `python -m tools.book_build`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# --browser: Debian's chromium prints the book's PDF (installed when missing, as root)
bash scripts/setup.sh --browser
exec ./.venv/bin/python -m tools.book_build "$@"
