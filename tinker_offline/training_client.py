"""``TrainingClient``: Tinker's training calls on a local LoRA model.

Semantics follow Tinker (tinker 0.38):

* ``cross_entropy``: ``loss = sum(-logprobs * weights)`` over every datum and entry;
  ``logprobs`` has the shape of ``target_tokens`` (``[T]`` or ``[T, K]``) and row ``t``
  scores the token that follows input position ``t``.
* Gradients accumulate over ``forward_backward*`` calls until ``optim_step``.
* ``forward_backward_custom`` with a callable runs the SDK's own client-side algorithm:
  a forward pass, the callable on leaf tensors, then a cross_entropy backward pass with
  ``weights = -dloss/dlogprobs``. A loss handle runs the same two passes, unless the
  service was created with ``custom_loss_server_side=True`` (the server's client-config
  switch, off by default in the SDK); then the handle has a ``loss_id`` and runs in one pass.
* A failure anywhere in those two client-side passes poisons the client, as the SDK's
  ``_fail_custom_requests`` does: every later request raises the SDK's RuntimeError.
* A rejected request changes nothing.

Options of the SDK's methods that only file things on Tinker's server (``user_metadata``,
``ttl_seconds``, ``retry_config``) are accepted and have no effect offline: there is no
server to file them with, and no request fails in a way a retry could mend. Options that
would change what Tinker computes and that the engine does not implement raise
``NotImplementedError`` naming the option.
"""

from __future__ import annotations

import math
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch
from tinker import types
from tinker.lib.public_interfaces.api_future import APIFuture
from tinker.lib.public_interfaces.custom_loss import LossHandle, check_loss_inputs, run_loss_handle
from tinker.lib.public_interfaces.training_client import TrainingClient as _SdkTrainingClient
from tinker.lib.public_interfaces.training_client import _check_loss_type_input
from typing_extensions import deprecated

from . import checkpoints, model_store
from .futures import ClientFuture, ServerRejection, as_sdk_error, client_future, run_now
from .lora import LocalModel
from .sampling_client import NO_STABILITY_INFO, SamplingClient
from .validation import (
    CheckedDatum,
    check_adam_params,
    check_data,
    check_handle_input_shapes,
    check_loss_fn,
    check_not_empty,
    check_scalar_loss,
    reject_unimplemented,
    user_error,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from .service_client import ServiceClient

CustomLossFn = Callable[[list[types.Datum], list[torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


def _output(logprobs: Sequence[torch.Tensor], metrics: dict[str, float]) -> types.ForwardBackwardOutput:
    return types.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[
            {"logprobs": types.TensorData.from_torch(lp.detach().to(torch.float32).contiguous())} for lp in logprobs
        ],
        metrics=metrics,
    )


def _cross_entropy(data: Sequence[CheckedDatum]) -> Callable[[list[int], list[torch.Tensor]], torch.Tensor]:
    """cross_entropy as a micro-batch loss: ``sum(-logprobs * weights)`` over its datums."""
    return lambda indices, logprobs: sum(-(lp * data[i].weights).sum() for i, lp in zip(indices, logprobs))


class TrainingClient:
    """Offline twin of ``tinker.TrainingClient`` for the calls this book uses.

    Create one with ``ServiceClient.create_lora_training_client``.
    """

    def __init__(self, service_client: "ServiceClient", model: LocalModel):
        self.service_client = service_client
        self.base_model = model.base_model
        self._model = model
        self._optimizer: torch.optim.AdamW | None = None
        # The training run this client's states are saved under: tinker://<run id>/weights/<name>.
        self.run_id = f"offline-run-{uuid.uuid4().hex[:12]}"
        # The error that poisoned this client (the SDK's TrainingClient._request_error).
        self._request_error: BaseException | None = None

    def _take_turn(self) -> None:
        """Refuse every request once a custom-loss request has failed, with the SDK's error
        (``TrainingClient._take_turn``, tinker 0.38)."""
        if self._request_error is not None:
            raise RuntimeError(
                "A previous request failed; this TrainingClient is poisoned "
                "and cannot accept further requests."
            ) from self._request_error

    def _in_turn(self, operation: Callable[[], Any]) -> Callable[[], Any]:
        """``operation`` as a request: it waits its turn (poisoned clients refuse), then runs."""

        def in_turn():
            self._take_turn()
            return operation()

        return in_turn

    def _run(self, operation: Callable[[], Any], expected_type: type = types.ForwardBackwardOutput) -> APIFuture:
        """Submit one request and return its future."""
        return run_now(self._in_turn(operation), expected_type)

    def _run_on(self, data: Sequence[types.Datum], operation: Callable[[], Any]) -> APIFuture:
        """Submit a request on ``data``; empty data fails at call time, as in the SDK."""
        check_not_empty(data)
        return self._run(operation)

    # ----------------------------------------------------------------- forward passes
    def _forward(self, data, loss_fn, loss_fn_config, with_grad: bool) -> types.ForwardBackwardOutput:
        check_loss_fn(loss_fn, loss_fn_config)
        checked = check_data(data, self._model.vocab_size)
        logprobs, loss_sum, gradients = self._model.run_micro_batches(checked, _cross_entropy(checked), with_grad)
        if not math.isfinite(loss_sum):
            raise user_error(f"cross_entropy loss is not finite ({loss_sum}); nothing was applied")
        if gradients is not None:
            self._model.accumulate(gradients)
        return _output(logprobs, {"loss:sum": loss_sum})

    def forward(
        self, data: list[types.Datum], loss_fn: types.LossFnType, loss_fn_config: Mapping[str, Any] | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """Compute the loss and logprobs without gradients; the accumulated gradients stay as
        they are.

        Args:
        - `data`: datums with `loss_fn_inputs["target_tokens"]` (int64, `[T]` or `[T, K]`, T =
          `model_input.length`) and `loss_fn_inputs["weights"]` (float, the same shape)
        - `loss_fn`: `"cross_entropy"`, the only built-in loss offline
        - `loss_fn_config`: must be empty: cross_entropy takes none

        Returns:
        - `APIFuture` of `ForwardBackwardOutput`: `loss_fn_outputs[i]["logprobs"]` has the shape
          of datum i's `target_tokens` (row t scores the token after input position t);
          `metrics["loss:sum"]` is `sum(-logprobs * weights)` over all datums
        """
        return self._run_on(data, lambda: self._forward(data, loss_fn, loss_fn_config, with_grad=False))

    def forward_backward(
        self, data: list[types.Datum], loss_fn: types.LossFnType, loss_fn_config: Mapping[str, Any] | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """As `forward`, and add the loss's gradients to the ones accumulated since the last
        `optim_step`.

        Returns:
        - `APIFuture` of `ForwardBackwardOutput`, as `forward`'s
        """
        return self._run_on(data, lambda: self._forward(data, loss_fn, loss_fn_config, with_grad=True))

    # ---------------------------------------------------------------- custom losses
    def forward_backward_custom(
        self,
        data: list[types.Datum],
        loss_fn: CustomLossFn | LossHandle,
        *,
        loss_type_input: str | None = None,
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """Forward/backward with a loss of your own over the logprobs of each datum's
        target_tokens.

        Args:
        - `data`: datums with `loss_fn_inputs["target_tokens"]` (`[T]` or `[T, K]`) and whatever
          else your loss reads
        - `loss_fn`: a callable `(data, logprobs_list) -> (loss, metrics)`, where
          `logprobs_list[i]` has the shape of datum i's `target_tokens` (never
          `[T, vocab_size]`) and `loss` is a scalar tensor; or a `LossHandle` from
          `ServiceClient.create_custom_loss` of the same service
        - `loss_type_input`: deprecated in the SDK (a DeprecationWarning); only `"logprobs"`

        Returns:
        - `APIFuture` of `ForwardBackwardOutput`: logprobs as `forward`'s, `metrics["loss:sum"]` =
          your loss, plus your metrics (and `surrogate_loss:sum` for the two-pass routes)
        """
        _check_loss_type_input(loss_type_input, "forward_backward_custom")
        if isinstance(loss_fn, LossHandle):
            self.service_client._check_handle(loss_fn)
            # The SDK checks a handle's declared ranks on the client, before sending anything.
            check_loss_inputs(loss_fn, data)
            check_handle_input_shapes(loss_fn.inputs[1:], data)
            if loss_fn.loss_id is not None:
                # Uploaded to the server: one forward_backward there, like any other request.
                return self._run_on(data, lambda: self._handle_pass(data, loss_fn))
        elif not callable(loss_fn):
            raise TypeError(
                "forward_backward_custom takes a callable (data, logprobs_list) -> (loss, metrics) "
                f"or a LossHandle, got {type(loss_fn).__name__}"
            )
        # The SDK builds its forward request (target_tokens, zero weights unless given) at
        # call time, so a datum without target_tokens fails here, before any future exists.
        forward_data = _SdkTrainingClient._get_custom_loss_forward_data(None, data, "cross_entropy")

        def passes():
            try:
                return self._callable_passes(data, forward_data, loss_fn)
            except Exception as error:
                # The SDK's _fail_custom_requests: the reserved requests can never complete,
                # so the client refuses everything from now on.
                error = as_sdk_error(error, types.ForwardBackwardOutput)
                if self._request_error is None:
                    self._request_error = error
                raise error from None

        return self._run_on(data, passes)

    def _callable_passes(
        self, data: list[types.Datum], forward_data: list[types.Datum], loss_fn: CustomLossFn | LossHandle
    ) -> types.ForwardBackwardOutput:
        # 1. The forward request.
        checked = check_data(forward_data, self._model.vocab_size)
        logprobs, _, _ = self._model.run_micro_batches(checked, _cross_entropy(checked), with_grad=False)
        forward_result = _output(logprobs, {})
        # 2. The SDK's own client-side step: the loss on leaf tensors, weights = -grad.
        try:
            custom = _SdkTrainingClient._compute_custom_loss(data, loss_fn, forward_result)
        except RuntimeError as error:
            raise ValueError(
                f"the custom loss failed in backward ({error}). It must return a scalar tensor "
                "computed from the logprobs it was given."
            ) from error
        if not math.isfinite(custom.loss_sum):
            raise ValueError(f"the custom loss is not finite ({custom.loss_sum}); nothing was applied")
        # 3. The SDK's backward request: cross_entropy with those weights (check_data refuses
        # non-finite ones, as the server would).
        backward = check_data(custom.data, self._model.vocab_size)
        _, surrogate_loss_sum, gradients = self._model.run_micro_batches(backward, _cross_entropy(backward), with_grad=True)
        self._model.accumulate(gradients)
        metrics = dict(custom.metrics)
        metrics["loss:sum"] = custom.loss_sum
        metrics["surrogate_loss:sum"] = surrogate_loss_sum
        return _output(logprobs, metrics)

    def _handle_pass(self, data: list[types.Datum], handle: LossHandle) -> types.ForwardBackwardOutput:
        # A server-side loss reads its own inputs; cross_entropy's weights play no part.
        checked = check_data(data, self._model.vocab_size, require_weights=False)
        metric_sums: dict[str, float] = {}

        def handle_loss(indices: list[int], logprobs: list[torch.Tensor]) -> torch.Tensor:
            loss, metrics = run_loss_handle(handle, [data[i] for i in indices], logprobs)
            # run_loss_handle averages ':mean' metrics over its data; undo it per micro-batch.
            for key, value in metrics.items():
                weight = len(indices) if key.endswith(":mean") else 1
                metric_sums[key] = metric_sums.get(key, 0.0) + value * weight
            return check_scalar_loss(loss, f"loss {handle.name!r}")

        logprobs, loss_sum, gradients = self._model.run_micro_batches(checked, handle_loss, with_grad=True)
        if not all(torch.isfinite(g).all() for g in gradients):
            raise ValueError(f"loss {handle.name!r} has a non-finite gradient; nothing was applied")
        self._model.accumulate(gradients)
        metrics = {k: v / len(data) if k.endswith(":mean") else v for k, v in metric_sums.items()}
        metrics["loss:sum"] = loss_sum
        return _output(logprobs, metrics)

    # ------------------------------------------------------------------ optimizer
    def optim_step(
        self, optim_params: types.AdamParams | None = None, *, adam_params: types.AdamParams | None = None
    ) -> APIFuture[types.OptimStepResponse]:
        """One AdamW step on the accumulated gradients, then clear them.

        As on Tinker, the step is `torch.optim.AdamW` with the given `learning_rate`, `beta1`,
        `beta2`, `eps` and `weight_decay` (default 0), after clipping the global gradient norm
        to `grad_clip_norm` (0: no clipping). Adam's state persists across steps.

        Args:
        - `optim_params`: `types.AdamParams` (the engine implements AdamW only)
        - `adam_params`: legacy keyword alias for `optim_params`; not both

        Returns:
        - `APIFuture` of `OptimStepResponse`; offline, `metrics["grad_norm:mean"]` is the global
          gradient norm before clipping
        """
        if optim_params is not None and adam_params is not None:
            raise ValueError("Specify optim_params or legacy adam_params, not both")
        params = optim_params if optim_params is not None else adam_params
        return self._run(lambda: self._optim_step(params), types.OptimStepResponse)

    def _optim_step(self, params: types.AdamParams | None) -> types.OptimStepResponse:
        params = check_adam_params(params)
        trainable = self._model.trainable
        if self._optimizer is None:
            self._optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate)
        for group in self._optimizer.param_groups:
            group.update(
                lr=params.learning_rate,
                betas=(params.beta1, params.beta2),
                eps=params.eps,
                weight_decay=params.weight_decay,
            )
        for p in trainable:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in trainable])
        if params.grad_clip_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(trainable, params.grad_clip_norm, grad_norm)
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        return types.OptimStepResponse(metrics={"grad_norm:mean": float(grad_norm)})

    # --------------------------------------------------------------- other calls
    def get_tokenizer(self) -> PreTrainedTokenizerBase:
        """The base model's Hugging Face tokenizer (not a future, as in the SDK)."""
        return model_store.load_tokenizer(self.base_model)

    def save_weights_for_sampler(
        self, name: str, ttl_seconds: int | None = None, user_metadata: dict[str, str] | None = None
    ) -> APIFuture[types.SaveWeightsForSamplerResponse]:
        """Save a snapshot of the current weights under `name`.

        Args:
        - `name`: the name in the returned path
        - `ttl_seconds`, `user_metadata`: no effect offline; the snapshot lives in memory as
          long as the `ServiceClient`, and there is no server to attach metadata on

        Returns:
        - `APIFuture` of `SaveWeightsForSamplerResponse` whose `path` (`tinker://...`)
          `create_sampling_client(model_path=path)` opens
        """

        def save() -> types.SaveWeightsForSamplerResponse:
            path = self.service_client._store_sampler_weights(name, self._model.snapshot())
            return types.SaveWeightsForSamplerResponse(path=path)

        return self._run(save, types.SaveWeightsForSamplerResponse)

    def create_sampling_client(
        self, model_path: str, retry_config: Any = None, record_stability_info: bool = False
    ) -> ClientFuture:
        """A future of a `SamplingClient` on weights saved with `save_weights_for_sampler`
        (see `ServiceClient.create_sampling_client`)."""
        return self.service_client.create_sampling_client(
            model_path=model_path, retry_config=retry_config, record_stability_info=record_stability_info
        )

    def save_weights_and_get_sampling_client(
        self,
        name: str | None = None,
        retry_config: Any = None,
        record_stability_info: bool = False,
        kind: types.SamplingClientKind = "snapshot",
    ) -> ClientFuture:
        """A future of a `SamplingClient` on a snapshot of the current weights (in memory).

        Args:
        - `name`: deprecated in the SDK and without effect (a DeprecationWarning, as there)
        - `retry_config`: no effect offline: no request fails in a way a retry could mend
        - `record_stability_info`: not implemented (NotImplementedError unless False)
        - `kind`: `"snapshot"` only; `"inflight"` raises NotImplementedError

        Returns:
        - a future of the `SamplingClient`; like the SDK's, it also answers the client's calls
          with a FutureWarning
        """
        if name is not None:
            warnings.warn(
                "The 'name' parameter of save_weights_and_get_sampling_client() is deprecated "
                "and has no effect", DeprecationWarning, stacklevel=2,
            )
        reject_unimplemented("record_stability_info", record_stability_info, False, NO_STABILITY_INFO)
        reject_unimplemented("kind", kind, "snapshot", "offline samplers are snapshots; leave kind='snapshot'")
        return client_future(
            self._in_turn(lambda: SamplingClient.from_snapshot(self._model.snapshot())), "SamplingClient"
        )

    # ---------------------------------------------------------------- training state
    def save_state(
        self, name: str, ttl_seconds: int | None = None, overwrite: bool = False,
        user_metadata: dict[str, str] | None = None,
    ) -> APIFuture[types.SaveWeightsResponse]:
        """Save the LoRA weights, the Adam state and the base model's name under `name`.

        Args:
        - `name`: the last segment of the returned path (no '/')
        - `overwrite`: replace a state already saved under this name (offline, saving over
          one without it is refused)
        - `ttl_seconds`, `user_metadata`: no effect offline (the SDK files them on the server)

        Returns:
        - `APIFuture` of `SaveWeightsResponse` whose `path` is `tinker://<run id>/weights/<name>`,
          which `ServiceClient.create_training_client_from_state[_with_optimizer]` loads. The
          file is written atomically: an interrupted save leaves the previous one readable.
        """
        checkpoints.check_name(name)
        path = checkpoints.tinker_path(self.run_id, name)

        def save() -> types.SaveWeightsResponse:
            checkpoints.write(self.service_client.state_root, path, self._export_state(), overwrite)
            return types.SaveWeightsResponse(path=path)

        return self._run(save, types.SaveWeightsResponse)

    @deprecated(_SdkTrainingClient.load_state.__deprecated__, category=FutureWarning)
    def load_state(self, path: str, weights_access_token: str | None = None) -> APIFuture[types.LoadWeightsResponse]:
        """Load the weights saved at `path` into this client; Adam starts afresh (deprecated
        in the SDK: use `ServiceClient.create_training_client_from_state`)."""
        return self._run(lambda: self._load(path, with_optimizer=False), types.LoadWeightsResponse)

    @deprecated(_SdkTrainingClient.load_state_with_optimizer.__deprecated__, category=FutureWarning)
    def load_state_with_optimizer(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[types.LoadWeightsResponse]:
        """Load the weights and the Adam state saved at `path` into this client (deprecated in
        the SDK: use `ServiceClient.create_training_client_from_state_with_optimizer`)."""
        return self._run(lambda: self._load(path, with_optimizer=True), types.LoadWeightsResponse)

    def _load(self, path: str, with_optimizer: bool) -> types.LoadWeightsResponse:
        state = checkpoints.read(self.service_client.state_root, path, base_model=self.base_model)
        self._import_state(state, with_optimizer, path)
        return types.LoadWeightsResponse(path=path)

    def _parameter_names(self) -> list[str]:
        """The trainable parameters' names, in the order of ``self._model.trainable``."""
        return [name for name, p in self._model.peft_model.named_parameters() if p.requires_grad]

    def _export_state(self) -> checkpoints.TrainingState:
        names = self._parameter_names()
        optimizer = None
        if self._optimizer is not None:
            saved = self._optimizer.state_dict()
            optimizer = {
                "state": {names[i]: {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in s.items()}
                          for i, s in saved["state"].items()},
                "param_groups": saved["param_groups"],
            }
        return checkpoints.TrainingState(
            base_model=self.base_model,
            rank=self._model.rank,
            targets=self._model.targets,
            adapter={name: p.detach().cpu().clone() for name, p in zip(names, self._model.trainable)},
            optimizer=optimizer,
        )

    def _import_state(self, state: checkpoints.TrainingState, with_optimizer: bool, path: str) -> None:
        """Set the weights (and, `with_optimizer`, the Adam state) from a saved state; the
        accumulated gradients are dropped. Nothing changes when the state does not fit."""
        names = self._parameter_names()
        if (state.rank, tuple(state.targets)) != (self._model.rank, self._model.targets) or set(state.adapter) != set(names):
            raise ServerRejection(
                f"the state at {path!r} has LoRA rank {state.rank} on {list(state.targets)}; this client has rank "
                f"{self._model.rank} on {list(self._model.targets)}: create a client from the state instead"
            )
        with torch.no_grad():
            for name, p in zip(names, self._model.trainable):
                p.copy_(state.adapter[name].to(p.device))
                p.grad = None
        self._optimizer = None
        if with_optimizer and state.optimizer is not None:
            groups = state.optimizer["param_groups"]
            self._optimizer = torch.optim.AdamW(self._model.trainable, lr=groups[0]["lr"])
            index = {name: i for i, name in enumerate(names)}
            self._optimizer.load_state_dict({
                "state": {index[name]: s for name, s in state.optimizer["state"].items()},
                "param_groups": groups,
            })

    # ------------------------------------------------- the SDK's deprecated async twins
    @deprecated(_SdkTrainingClient.forward_async.__deprecated__, category=FutureWarning)
    async def forward_async(self, data, loss_fn, loss_fn_config=None) -> APIFuture[types.ForwardBackwardOutput]:
        return self.forward(data, loss_fn, loss_fn_config)

    @deprecated(_SdkTrainingClient.forward_backward_async.__deprecated__, category=FutureWarning)
    async def forward_backward_async(self, data, loss_fn, loss_fn_config=None) -> APIFuture[types.ForwardBackwardOutput]:
        return self.forward_backward(data, loss_fn, loss_fn_config)

    @deprecated(_SdkTrainingClient.forward_backward_custom_async.__deprecated__, category=FutureWarning)
    async def forward_backward_custom_async(self, data, loss_fn, *, loss_type_input=None) -> APIFuture[types.ForwardBackwardOutput]:
        return self.forward_backward_custom(data, loss_fn, loss_type_input=loss_type_input)

    @deprecated(_SdkTrainingClient.optim_step_async.__deprecated__, category=FutureWarning)
    async def optim_step_async(self, optim_params=None, *, adam_params=None) -> APIFuture[types.OptimStepResponse]:
        return self.optim_step(optim_params, adam_params=adam_params)

    @deprecated(_SdkTrainingClient.save_weights_for_sampler_async.__deprecated__, category=FutureWarning)
    async def save_weights_for_sampler_async(
        self, name: str, ttl_seconds: int | None = None, user_metadata: dict[str, str] | None = None
    ) -> APIFuture[types.SaveWeightsForSamplerResponse]:
        return self.save_weights_for_sampler(name, ttl_seconds, user_metadata)

    @deprecated(_SdkTrainingClient.create_sampling_client_async.__deprecated__, category=FutureWarning)
    async def create_sampling_client_async(
        self, model_path: str, retry_config: Any = None, record_stability_info: bool = False
    ) -> SamplingClient:
        return self.create_sampling_client(model_path, retry_config, record_stability_info).result()

    @deprecated(_SdkTrainingClient.save_weights_and_get_sampling_client_async.__deprecated__, category=FutureWarning)
    async def save_weights_and_get_sampling_client_async(
        self, name: str | None = None, retry_config: Any = None, record_stability_info: bool = False,
        kind: types.SamplingClientKind = "snapshot",
    ) -> SamplingClient:
        return self.save_weights_and_get_sampling_client(name, retry_config, record_stability_info, kind).result()

    @deprecated(_SdkTrainingClient.save_state_async.__deprecated__, category=FutureWarning)
    async def save_state_async(
        self, name: str, ttl_seconds: int | None = None, overwrite: bool = False,
        user_metadata: dict[str, str] | None = None,
    ) -> APIFuture[types.SaveWeightsResponse]:
        return self.save_state(name, ttl_seconds, overwrite, user_metadata)

    @deprecated(_SdkTrainingClient.load_state_async.__deprecated__, category=FutureWarning)
    async def load_state_async(self, path: str, weights_access_token: str | None = None) -> APIFuture[types.LoadWeightsResponse]:
        return self._run(lambda: self._load(path, with_optimizer=False), types.LoadWeightsResponse)

    @deprecated(_SdkTrainingClient.load_state_with_optimizer_async.__deprecated__, category=FutureWarning)
    async def load_state_with_optimizer_async(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[types.LoadWeightsResponse]:
        return self._run(lambda: self._load(path, with_optimizer=True), types.LoadWeightsResponse)

    # ------------------------------------------------------- inspection (not in the SDK)
    def lora_state(self) -> dict[str, torch.Tensor]:
        """A copy of every trainable LoRA tensor, by peft parameter name: for tests and
        inspection."""
        return {name: p.detach().clone() for name, p in self._model.peft_model.named_parameters() if p.requires_grad}

    def accumulated_gradients(self) -> dict[str, torch.Tensor | None]:
        """A copy of each trainable tensor's accumulated gradient (None: none since the last
        optim_step), by peft parameter name."""
        return {
            name: None if p.grad is None else p.grad.detach().clone()
            for name, p in self._model.peft_model.named_parameters()
            if p.requires_grad
        }

    def optimizer_state(self) -> dict:
        """A deep copy of the Adam state (empty before the first step)."""
        if self._optimizer is None:
            return {}
        state = self._optimizer.state_dict()
        return {
            "state": {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in v.items()} for k, v in state["state"].items()},
            "param_groups": [dict(g) for g in state["param_groups"]],
        }
