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
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Callable, Mapping, Sequence

from typing_extensions import deprecated

import torch
from tinker import types
from tinker.lib.public_interfaces.custom_loss import LossHandle, check_loss_inputs, run_loss_handle
from tinker.lib.public_interfaces.training_client import TrainingClient as _SdkTrainingClient

from . import model_store
from .futures import as_sdk_error, client_future, run_now
from .gathered_logprobs import gathered_logprobs
from .validation import (
    CheckedDatum,
    check_adam_params,
    check_data,
    check_handle_input_shapes,
    check_loss_fn,
    check_scalar_loss,
    user_error,
)

CustomLossFn = Callable[[list[types.Datum], list[torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]

ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP_PROJECTIONS = ["gate_proj", "up_proj", "down_proj"]
UNEMBEDDING = ["lm_head"]

# Padded tokens per forward pass; longer requests are split into micro-batches whose
# gradients are summed, which is exact because every loss here is a sum over datums.
DEFAULT_MAX_TOKENS_PER_BATCH = 2048


def lora_target_modules(train_mlp: bool, train_attn: bool, train_unembed: bool) -> list[str]:
    targets = (
        (ATTENTION_PROJECTIONS if train_attn else [])
        + (MLP_PROJECTIONS if train_mlp else [])
        + (UNEMBEDDING if train_unembed else [])
    )
    if not targets:
        raise ValueError("train_mlp, train_attn and train_unembed are all False: nothing to train")
    return targets


def build_lora_model(base: model_store.BaseModel, rank: int, seed: int | None, targets: list[str]):
    """The base model with fresh LoRA adapters (B = 0, so it starts equal to the base)."""
    import peft

    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive integer, got {rank!r}")
    if seed is not None:
        torch.manual_seed(seed)
    model = model_store.build_causal_lm(base)
    config = peft.LoraConfig(r=rank, lora_alpha=32, lora_dropout=0.0, target_modules=targets)
    with warnings.catch_warnings():
        # LoRA on lm_head adapts only the output projection, never the tied input
        # embedding: that is what train_unembed means, so peft's tying warning is moot.
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, config)


def unembedding_matrix(lm_head: torch.nn.Module) -> torch.Tensor:
    """The [vocab, hidden] output projection, LoRA delta included when lm_head has one."""
    if hasattr(lm_head, "get_delta_weight"):
        adapter = lm_head.active_adapters[0]
        return lm_head.base_layer.weight + lm_head.get_delta_weight(adapter)
    return lm_head.weight


class LocalModel:
    """A LoRA-wrapped causal LM that computes Tinker-shaped logprobs."""

    def __init__(self, peft_model, max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH):
        self.peft_model = peft_model
        causal_lm = peft_model.get_base_model()
        self.decoder = causal_lm.model
        self.lm_head = causal_lm.lm_head
        self.vocab_size = causal_lm.config.vocab_size
        self.max_tokens_per_batch = max_tokens_per_batch
        self.trainable = [p for p in peft_model.parameters() if p.requires_grad]

    def micro_batches(self, data: Sequence[CheckedDatum]) -> list[list[int]]:
        """Consecutive datum indices grouped so each padded batch fits the token budget."""
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i, datum in enumerate(data):
            length = len(datum.input_ids)
            if current and max(longest, length) * (len(current) + 1) > self.max_tokens_per_batch:
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def logprobs(self, batch: Sequence[CheckedDatum]) -> list[torch.Tensor]:
        """Each datum's logprobs of its target_tokens, shaped like them; differentiable
        when grad mode is on."""
        lengths = [len(d.input_ids) for d in batch]
        longest = max(lengths)
        input_ids = torch.zeros(len(batch), longest, dtype=torch.long)
        for row, datum in enumerate(batch):
            input_ids[row, : lengths[row]] = torch.tensor(datum.input_ids)
        # Right padding never changes a causal model's outputs at real positions; the mask
        # is only needed (and only paid for) when lengths differ.
        attention_mask = None
        if min(lengths) != longest:
            attention_mask = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).long()
        hidden = self.decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # One gather over every datum's rows: with a LoRA'd lm_head each call's backward
        # builds a [vocab, hidden] gradient, so a call per datum would pay that per datum.
        ids_per_datum = [d.target_tokens.reshape(n, -1) for d, n in zip(batch, lengths)]
        widest = max(ids.shape[1] for ids in ids_per_datum)
        token_ids = torch.zeros(sum(lengths), widest, dtype=torch.long)
        starts = [0, *itertools.accumulate(lengths)]
        for ids, start in zip(ids_per_datum, starts):
            token_ids[start : start + ids.shape[0], : ids.shape[1]] = ids
        rows = torch.cat([hidden[row, :n] for row, n in enumerate(lengths)])
        logprobs = gathered_logprobs(rows, unembedding_matrix(self.lm_head), token_ids)
        return [
            logprobs[start : start + ids.shape[0], : ids.shape[1]].reshape(d.target_tokens.shape)
            for d, ids, start in zip(batch, ids_per_datum, starts)
        ]

    def accumulate(self, gradients: Sequence[torch.Tensor]) -> None:
        for param, grad in zip(self.trainable, gradients, strict=True):
            param.grad = grad.clone() if param.grad is None else param.grad + grad


def _tensor_data(logprobs: torch.Tensor) -> types.TensorData:
    return types.TensorData.from_torch(logprobs.detach().to(torch.float32).contiguous())


def _output(logprobs: Sequence[torch.Tensor], metrics: dict[str, float]) -> types.ForwardBackwardOutput:
    return types.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[{"logprobs": _tensor_data(lp)} for lp in logprobs],
        metrics=metrics,
    )


class TrainingClient:
    """Offline twin of ``tinker.TrainingClient`` for the calls this book uses."""

    def __init__(
        self,
        service_client,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH,
    ):
        self.service_client = service_client
        self.base_model = base_model
        self.rank = rank
        self._base = model_store.load_base_model(base_model)
        self._targets = lora_target_modules(train_mlp, train_attn, train_unembed)
        peft_model = build_lora_model(self._base, rank, seed, self._targets)
        self._model = LocalModel(peft_model, max_tokens_per_batch)
        self._optimizer: torch.optim.AdamW | None = None
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

    def _run(self, operation: Callable[[], Any], expected_type: type = types.ForwardBackwardOutput):
        """Submit one request and return its future."""
        return run_now(self._in_turn(operation), expected_type)

    # ----------------------------------------------------------------- forward passes
    def _cross_entropy_pass(
        self, data: Sequence[CheckedDatum], with_grad: bool
    ) -> tuple[list[torch.Tensor], float, list[torch.Tensor] | None]:
        """logprobs, loss:sum and (when with_grad) the gradients, not yet applied."""
        model = self._model
        logprobs: list[torch.Tensor] = [None] * len(data)  # type: ignore[list-item]
        loss_sum = 0.0
        gradients = [torch.zeros_like(p) for p in model.trainable] if with_grad else None
        for indices in model.micro_batches(data):
            batch = [data[i] for i in indices]
            with torch.set_grad_enabled(with_grad):
                batch_logprobs = model.logprobs(batch)
                loss = sum(-(lp * d.weights).sum() for lp, d in zip(batch_logprobs, batch))
            loss_sum += float(loss.detach())
            if with_grad and loss.requires_grad:
                for total, g in zip(gradients, self._gradients(loss)):
                    total += g
            for i, lp in zip(indices, batch_logprobs):
                logprobs[i] = lp.detach()
        return logprobs, loss_sum, gradients

    def _gradients(self, loss: torch.Tensor) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, self._model.trainable, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(self._model.trainable, grads)]

    def _forward(self, data, loss_fn, loss_fn_config, with_grad: bool) -> types.ForwardBackwardOutput:
        check_loss_fn(loss_fn)
        _check_no_config(loss_fn_config)
        checked = check_data(data, self._model.vocab_size)
        logprobs, loss_sum, gradients = self._cross_entropy_pass(checked, with_grad)
        if not torch.isfinite(torch.tensor(loss_sum)):
            raise user_error(f"cross_entropy loss is not finite ({loss_sum}); nothing was applied")
        if gradients is not None:
            self._model.accumulate(gradients)
        return _output(logprobs, {"loss:sum": loss_sum})

    def forward(self, data: list[types.Datum], loss_fn: types.LossFnType, loss_fn_config: Mapping[str, Any] | None = None):
        """Logprobs and loss without gradients."""
        if not data:
            raise ValueError("No data provided")
        return self._run(lambda: self._forward(data, loss_fn, loss_fn_config, with_grad=False))

    def forward_backward(self, data: list[types.Datum], loss_fn: types.LossFnType, loss_fn_config: Mapping[str, Any] | None = None):
        """Logprobs, loss, and gradients added to the ones accumulated since the last optim_step."""
        if not data:
            raise ValueError("No data provided")
        return self._run(lambda: self._forward(data, loss_fn, loss_fn_config, with_grad=True))

    # ---------------------------------------------------------------- custom losses
    def forward_backward_custom(
        self,
        data: list[types.Datum],
        loss_fn: CustomLossFn | LossHandle,
        *,
        loss_type_input: str | None = None,
    ):
        """A loss of your own over the logprobs of each datum's target_tokens.

        A callable gets ``(data, logprobs_list)`` with each tensor shaped like that datum's
        target_tokens, never ``[T, vocab_size]``. A handle from
        ``ServiceClient.create_custom_loss`` runs per datum in one pass.
        """
        if loss_type_input not in (None, "logprobs"):
            raise ValueError(f"loss_type_input must be 'logprobs', got {loss_type_input!r}")
        if isinstance(loss_fn, LossHandle):
            self.service_client._check_handle(loss_fn)
            # The SDK checks a handle's declared ranks on the client, before sending anything.
            check_loss_inputs(loss_fn, data)
            check_handle_input_shapes(loss_fn.inputs[1:], data)
            if loss_fn.loss_id is not None:
                # Uploaded to the server: one forward_backward there, like any other request.
                return self._run(lambda: self._handle_pass(data, loss_fn))
        elif not callable(loss_fn):
            raise TypeError(
                "forward_backward_custom takes a callable (data, logprobs_list) -> (loss, metrics) "
                f"or a LossHandle, got {type(loss_fn).__name__}"
            )
        if not data:
            raise ValueError("No data provided")
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

        return self._run(passes)

    @deprecated(_SdkTrainingClient.forward_async.__deprecated__, category=FutureWarning)
    async def forward_async(self, data, loss_fn, loss_fn_config=None):
        return self.forward(data, loss_fn, loss_fn_config)

    @deprecated(_SdkTrainingClient.forward_backward_async.__deprecated__, category=FutureWarning)
    async def forward_backward_async(self, data, loss_fn, loss_fn_config=None):
        return self.forward_backward(data, loss_fn, loss_fn_config)

    @deprecated(_SdkTrainingClient.forward_backward_custom_async.__deprecated__, category=FutureWarning)
    async def forward_backward_custom_async(self, data, loss_fn, *, loss_type_input=None):
        return self.forward_backward_custom(data, loss_fn, loss_type_input=loss_type_input)

    @deprecated(_SdkTrainingClient.optim_step_async.__deprecated__, category=FutureWarning)
    async def optim_step_async(self, optim_params=None, *, adam_params=None):
        return self.optim_step(optim_params, adam_params=adam_params)

    def _callable_passes(
        self, data: list[types.Datum], forward_data: list[types.Datum], loss_fn: CustomLossFn | LossHandle
    ) -> types.ForwardBackwardOutput:
        # 1. The forward request.
        checked = check_data(forward_data, self._model.vocab_size)
        logprobs, _, _ = self._cross_entropy_pass(checked, with_grad=False)
        forward_result = _output(logprobs, {})
        # 2. The SDK's own client-side step: the loss on leaf tensors, weights = -grad.
        try:
            custom = _SdkTrainingClient._compute_custom_loss(data, loss_fn, forward_result)
        except RuntimeError as error:
            raise ValueError(
                f"the custom loss failed in backward ({error}). It must return a scalar tensor "
                "computed from the logprobs it was given."
            ) from error
        if not torch.isfinite(torch.tensor(custom.loss_sum)):
            raise ValueError(f"the custom loss is not finite ({custom.loss_sum}); nothing was applied")
        # 3. The SDK's backward request: cross_entropy with those weights.
        backward = check_data(custom.data, self._model.vocab_size)
        if not all(torch.isfinite(d.weights).all() for d in backward):
            raise ValueError("the custom loss has a non-finite gradient; nothing was applied")
        _, surrogate_loss_sum, gradients = self._cross_entropy_pass(backward, with_grad=True)
        self._model.accumulate(gradients)
        metrics = dict(custom.metrics)
        metrics["loss:sum"] = custom.loss_sum
        metrics["surrogate_loss:sum"] = surrogate_loss_sum
        return _output(logprobs, metrics)

    def _handle_pass(self, data: list[types.Datum], handle: LossHandle) -> types.ForwardBackwardOutput:
        # A server-side loss reads its own inputs; cross_entropy's weights play no part.
        checked = check_data(data, self._model.vocab_size, require_weights=False)
        model = self._model
        logprobs: list[torch.Tensor] = [None] * len(data)  # type: ignore[list-item]
        gradients = [torch.zeros_like(p) for p in model.trainable]
        loss_sum = 0.0
        metric_sums: dict[str, float] = {}
        for indices in model.micro_batches(checked):
            batch_logprobs = model.logprobs([checked[i] for i in indices])
            batch_data = [data[i] for i in indices]
            loss, metrics = run_loss_handle(handle, batch_data, batch_logprobs)
            loss = check_scalar_loss(loss, f"loss {handle.name!r}")
            loss_sum += float(loss.detach())
            # run_loss_handle averages ':mean' metrics over its data; undo it per micro-batch.
            for key, value in metrics.items():
                weight = len(indices) if key.endswith(":mean") else 1
                metric_sums[key] = metric_sums.get(key, 0.0) + value * weight
            if loss.requires_grad:
                for total, g in zip(gradients, self._gradients(loss)):
                    total += g
            for i, lp in zip(indices, batch_logprobs):
                logprobs[i] = lp.detach()
        if not all(torch.isfinite(g).all() for g in gradients):
            raise ValueError(f"loss {handle.name!r} has a non-finite gradient; nothing was applied")
        model.accumulate(gradients)
        metrics = {k: v / len(data) if k.endswith(":mean") else v for k, v in metric_sums.items()}
        metrics["loss:sum"] = loss_sum
        return _output(logprobs, metrics)

    # ------------------------------------------------------------------ optimizer
    def optim_step(self, optim_params: types.AdamParams | None = None, *, adam_params: types.AdamParams | None = None):
        """One AdamW step on the accumulated gradients (Tinker: identical to torch.optim.AdamW,
        weight decay 0 by default), then clear them."""
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
    def get_tokenizer(self):
        return model_store.load_tokenizer(self.base_model)

    def save_weights_for_sampler(self, name: str, ttl_seconds: int | None = None):
        """Save a snapshot of the weights under ``name``; a future of its ``tinker://`` path,
        which ``create_sampling_client(model_path=...)`` opens."""

        def save() -> types.SaveWeightsForSamplerResponse:
            path = self.service_client._store_sampler_weights(name, self._sampler_snapshot())
            return types.SaveWeightsForSamplerResponse(path=path)

        return self._run(save, types.SaveWeightsForSamplerResponse)

    @deprecated(_SdkTrainingClient.save_weights_for_sampler_async.__deprecated__, category=FutureWarning)
    async def save_weights_for_sampler_async(self, name: str, ttl_seconds: int | None = None):
        return self.save_weights_for_sampler(name, ttl_seconds)

    def create_sampling_client(self, model_path: str, retry_config=None):
        """A future of a sampling client on weights saved with ``save_weights_for_sampler``."""
        return self.service_client.create_sampling_client(model_path=model_path)

    @deprecated(_SdkTrainingClient.create_sampling_client_async.__deprecated__, category=FutureWarning)
    async def create_sampling_client_async(self, model_path: str, retry_config=None):
        return self.create_sampling_client(model_path).result()

    def save_weights_and_get_sampling_client(self, name: str | None = None, retry_config=None):
        """A future of a sampling client on a snapshot of the current weights."""
        from .sampling_client import SamplingClient

        return client_future(
            self._in_turn(lambda: SamplingClient.from_snapshot(self._sampler_snapshot())), "SamplingClient"
        )

    @deprecated(_SdkTrainingClient.save_weights_and_get_sampling_client_async.__deprecated__, category=FutureWarning)
    async def save_weights_and_get_sampling_client_async(self, name: str | None = None, retry_config=None):
        return self.save_weights_and_get_sampling_client(name).result()

    def _sampler_snapshot(self) -> "model_store.AdapterSnapshot":
        adapter = {k: v.detach().clone() for k, v in self._model.peft_model.state_dict().items() if "lora_" in k}
        return model_store.AdapterSnapshot(self.base_model, self.rank, tuple(self._targets), adapter)

    def lora_state(self) -> dict[str, torch.Tensor]:
        """The trainable LoRA tensors (a copy): for tests and inspection."""
        return {
            name: p.detach().clone()
            for name, p in self._model.peft_model.named_parameters()
            if p.requires_grad
        }

    def accumulated_gradients(self) -> dict[str, torch.Tensor | None]:
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


def _check_no_config(loss_fn_config: Mapping[str, Any] | None) -> None:
    if loss_fn_config:
        raise user_error(
            f"cross_entropy takes no loss_fn_config, got keys {sorted(loss_fn_config)}"
        )


