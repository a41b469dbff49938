"""Running jupyter-book and reading its log: the one runner the HTML build
(tools/book_build.py) and the single-page build for the PDF (tools/site_pdf.py) share."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXECUTING = re.compile(r"Executing notebook using")
CACHED = re.compile(r"Using cached notebook")
FAILED = re.compile(r"Executing notebook failed")


def count_executions(log_text: str) -> dict[str, int]:
    """Count notebook executions / cache hits in a myst-nb build log."""
    return {
        "executed": len(EXECUTING.findall(log_text)),
        "cached": len(CACHED.findall(log_text)),
        "failed": len(FAILED.findall(log_text)),
    }


def default_jupyter_book() -> str:
    cand = Path(sys.executable).with_name("jupyter-book")
    if cand.exists():
        return str(cand)
    found = shutil.which("jupyter-book")
    if found:
        return found
    raise FileNotFoundError(
        "jupyter-book not found next to the running Python; run `bash scripts/setup.sh`"
    )


def run_logged(cmd: list[str], cwd: Path, env: Mapping[str, str], log_path: Path, echo: bool) -> int:
    """Run ``cmd``, saving its output (without ANSI colours) to ``log_path``; echo it if asked."""
    with log_path.open("w", encoding="utf-8") as logf:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            logf.write(ANSI.sub("", line))
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
        return proc.wait()
