#!/usr/bin/env bash
# Run the whole test suite (tests/). Exit code = pytest's.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k fingerprint -x   # extra arguments go to pytest
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --browser
exec ./.venv/bin/python -m pytest -q "$@"
