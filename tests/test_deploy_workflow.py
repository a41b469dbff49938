"""The deploy workflow builds on Tinker only when the repository has a TINKER_API_KEY
secret, offline otherwise, and never prints the key."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from conftest import REPO_ROOT, SENTINEL_API_KEY

WORKFLOW = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text())
STEPS = WORKFLOW["jobs"]["build"]["steps"]
SECRET = "${{ secrets.TINKER_API_KEY }}"


def choose_backend(key: str | None) -> dict[str, str]:
    """What the workflow's backend step writes to $GITHUB_OUTPUT, given the secret's value
    (GitHub gives an unset secret as an empty string)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TINKER_API_KEY", "TINKER_BOOK_BACKEND")}
    env["TINKER_API_KEY"] = key or ""
    (step,) = [s for s in STEPS if s.get("id") == "backend"]
    command = step["run"].split(" >> ")[0].replace("python ", f"{sys.executable} ", 1)
    out = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    assert key is None or key not in out.stdout + out.stderr, "the backend step printed the key"
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def test_without_the_secret_the_workflow_builds_offline():
    assert choose_backend(None) == {"backend": "offline", "flag": ""}


def test_with_the_secret_it_builds_on_tinker_without_printing_the_key():
    assert choose_backend(SENTINEL_API_KEY) == {"backend": "tinker", "flag": "--tinker"}


def test_the_build_and_cache_key_take_the_chosen_flag_and_the_key_only_from_the_secret():
    ids = [s.get("id") for s in STEPS]
    build = next(s for s in STEPS if "scripts/build_book.sh" in s.get("run", ""))
    key_step = next(s for s in STEPS if "--print-cache-key" in s.get("run", ""))
    assert build["run"] == "bash scripts/build_book.sh ${{ steps.backend.outputs.flag }}"
    assert "${{ steps.backend.outputs.flag }}" in key_step["run"]
    assert ids.index("backend") < STEPS.index(key_step) < STEPS.index(build)
    for step in STEPS:
        assert "secrets." not in step.get("run", ""), f"a run line reads a secret: {step['run']}"
        if "TINKER_API_KEY" in step.get("env", {}):
            assert step["env"]["TINKER_API_KEY"] == SECRET
