"""Training state on disk: what ``TrainingClient.save_state`` writes and the load calls read.

A state is one file, ``<state root>/<run id>/weights/<name>.pt``, addressed by the path
the SDK uses for training checkpoints, ``tinker://<run id>/weights/<name>`` (tinker 0.38:
``types.ParsedCheckpointTinkerPath``). It holds the base model's name, the LoRA rank and
adapted modules, every trainable LoRA tensor and, once a step was taken, the AdamW state
by parameter name.

Saving writes a temporary file in the same folder and renames it over the old one
(``os.replace``), so a save that is interrupted leaves the previous state readable.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import torch
from tinker import types

from .futures import ServerRejection

#: Bumped when the file's layout changes; a file of another format is refused by name.
FORMAT = 1


@dataclasses.dataclass(frozen=True)
class TrainingState:
    """What a saved state holds."""

    base_model: str
    rank: int
    targets: tuple[str, ...]
    adapter: dict[str, torch.Tensor]  # trainable LoRA tensors, by peft parameter name
    optimizer: dict | None  # AdamW's state_dict with parameters named, None before the first step


def tinker_path(run_id: str, name: str) -> str:
    """The SDK's path of a training checkpoint."""
    return f"tinker://{run_id}/weights/{name}"


def check_name(name: str) -> None:
    """A state's name is one path segment."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"save_state name must be a non-empty string without '/', got {name!r}")


def file_for(root: Path, path: str) -> Path:
    """The file that holds the state at ``path``; a path that is not a training checkpoint
    is refused, naming it."""
    try:
        parsed = types.ParsedCheckpointTinkerPath.from_tinker_path(path)
    except ValueError:
        raise ServerRejection(
            f"{path!r} is not a training state path; use the path that save_state returned "
            "(tinker://<run id>/weights/<name>)"
        ) from None
    if parsed.checkpoint_type != "training":
        raise ServerRejection(
            f"{path!r} holds sampler weights, not a training state; load the path that "
            "save_state returned (tinker://<run id>/weights/<name>)"
        )
    return root / parsed.training_run_id / f"{parsed.checkpoint_id}.pt"


def write(root: Path, path: str, state: TrainingState, overwrite: bool) -> None:
    """Save ``state`` at ``path``, atomically: a temporary file, then a rename."""
    target = file_for(root, path)
    if target.exists() and not overwrite:
        raise ServerRejection(f"a state is already saved at {path!r}; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        torch.save({"format": FORMAT, **dataclasses.asdict(state)}, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def read(root: Path, path: str, base_model: str | None = None) -> TrainingState:
    """The state at ``path``. Refused, naming the path, when nothing is saved there, when the
    file is not a state of this engine, or when it holds another base model than
    ``base_model`` (None: any)."""
    source = file_for(root, path)
    if not source.is_file():
        raise ServerRejection(
            f"no training state at {path!r} (looked for {source}); save one with "
            "training_client.save_state(name).result().path"
        )
    try:
        saved = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is refused by name
        raise ServerRejection(f"the state at {path!r} cannot be read ({source}: {error})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ServerRejection(f"the file at {path!r} ({source}) is not a training state of format {FORMAT}")
    saved.pop("format")
    state = TrainingState(**{**saved, "targets": tuple(saved["targets"])})
    if base_model is not None and base_model != state.base_model:
        raise ServerRejection(
            f"the state at {path!r} was saved from base model {state.base_model!r}, not {base_model!r}; "
            "load it into a client of that model, or leave base_model out"
        )
    return state
