#!/usr/bin/env bash
# Run one notebook of the book offline and save the result next to it.
#
#   bash scripts/run_notebook.sh path/to/notebook.ipynb
#       -> path/to/notebook.executed.ipynb   (the input file is not modified)
#
# Sets up ./.venv first (scripts/setup.sh: pinned dependencies + the offline
# model), then executes every cell with TINKER_BOOK_BACKEND=offline (nbclient,
# the executor myst-nb uses for the book), in the notebook's own directory.
# A notebook downloaded from the site, saved anywhere, reads the data of this clone
# (TINKER_BOOK_DATA_URL=file://<clone>/data/emotions/, read by its setup cell).
# A cell that raises stops the run: the partial result is still written, and the
# exit code is non-zero. TINKER_API_KEY is not needed (and not used) offline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [[ $# -eq 1 ]] && exit 0 || exit 2
fi
NOTEBOOK="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
if [[ ! -f "$NOTEBOOK" || "$NOTEBOOK" != *.ipynb ]]; then
    echo "[run_notebook] ERROR: '$1' is not an .ipynb file" >&2
    exit 2
fi
OUTPUT="${NOTEBOOK%.ipynb}.executed.ipynb"

(cd "$ROOT" && bash scripts/setup.sh) >&2

export TINKER_BOOK_BACKEND=offline
export TINKER_BOOK_DATA_URL="${TINKER_BOOK_DATA_URL:-file://$ROOT/data/emotions/}"
echo "[run_notebook] executing $NOTEBOOK (TINKER_BOOK_BACKEND=offline)" >&2
exec "$ROOT/.venv/bin/python" - "$NOTEBOOK" "$OUTPUT" <<'PY'
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

src, out = Path(sys.argv[1]), Path(sys.argv[2])
nb = nbformat.read(src, as_version=4)
client = NotebookClient(
    nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}}
)
start = time.perf_counter()
status = 0
try:
    client.execute()
except CellExecutionError as exc:
    print(f"[run_notebook] a cell failed:\n{exc}", file=sys.stderr)
    status = 1
finally:
    nbformat.write(nb, out)
took = time.perf_counter() - start
print(f"[run_notebook] {'done' if status == 0 else 'FAILED'} in {took:.1f} s -> {out}", file=sys.stderr)
sys.exit(status)
PY
