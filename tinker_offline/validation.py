"""The checks Tinker's server makes on a forward/backward request, with its wording, and
the engine's refusal of the options it does not implement.

Every check runs before any computation, so a rejected request changes nothing: not the
weights, not the accumulated gradients, not the optimizer state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import torch
from tinker import types

from .futures import ServerRejection
from .images import PLACEHOLDER_TOKEN, image_positions

SUPPORTED_LOSS_FNS = ("cross_entropy",)


def user_error(message: str) -> ServerRejection:
    """Bad input, rejected as Tinker's server would; ``.result()`` raises it as the SDK's
    ``RequestFailedError`` (see ``futures.run_now``)."""
    return ServerRejection(message)


@dataclasses.dataclass(frozen=True)
class CheckedDatum:
    """A datum the engine can run: token ids and cross_entropy inputs as tensors."""

    input_ids: list[int]
    target_tokens: torch.Tensor  # int64, [T] or [T, K]
    weights: torch.Tensor  # float32, same shape as target_tokens


def check_not_empty(data: Sequence[types.Datum]) -> None:
    """A request needs at least one datum; the SDK raises this at call time."""
    if not data:
        raise ValueError("No data provided")  # the SDK's own message


def check_loss_fn(loss_fn: object, loss_fn_config: Mapping[str, Any] | None) -> None:
    """``loss_fn`` is one the engine runs, with no ``loss_fn_config`` (cross_entropy has none)."""
    if loss_fn not in SUPPORTED_LOSS_FNS:
        raise user_error(
            f"loss_fn {loss_fn!r} is not supported offline; use one of {list(SUPPORTED_LOSS_FNS)} "
            "or forward_backward_custom for your own loss"
        )
    if loss_fn_config:
        raise user_error(f"cross_entropy takes no loss_fn_config, got keys {sorted(loss_fn_config)}")


def reject_unimplemented(option: str, value: object, default: object, what_to_do: str) -> None:
    """Refuse an SDK option that would change what Tinker does but that the engine does not
    implement, rather than ignore it: NotImplementedError naming it, unless it is ``default``."""
    if value != default:
        raise NotImplementedError(f"tinker_offline does not implement {option}={value!r}; {what_to_do}")


def model_input_ids(index: int, model_input: types.ModelInput) -> list[int]:
    """The input id at every position: text tokens as they are, and ``PLACEHOLDER_TOKEN`` at
    each of an image's positions (the text model cannot see pixels; see ``images``)."""
    ids: list[int] = []
    for chunk in model_input.chunks:
        if isinstance(chunk, types.EncodedTextChunk):
            ids.extend(chunk.tokens)
        elif isinstance(chunk, types.ImageChunk):
            ids.extend([PLACEHOLDER_TOKEN] * image_positions(chunk))
        else:
            raise user_error(
                f"model_input at index {index} has a {type(chunk).__name__}; tinker_offline runs "
                "EncodedTextChunk and ImageChunk chunks only"
            )
    return ids


def _tensor(datum: types.Datum, key: str) -> torch.Tensor | None:
    value = datum.loss_fn_inputs.get(key)
    return None if value is None else value.to_torch()


def check_datum(index: int, datum: types.Datum, vocab_size: int, require_weights: bool = True) -> CheckedDatum:
    """Datum ``index`` as the engine runs it, or the server's rejection. Without weights and
    ``require_weights=False`` (a server-side loss reads its own inputs) they are zeros."""
    input_ids = model_input_ids(index, datum.model_input)
    token_count = len(input_ids)
    if token_count == 0:
        raise user_error(f"model_input at index {index} is empty; it needs at least one token")
    bad_inputs = [t for t in input_ids if not 0 <= t < vocab_size]
    if bad_inputs:
        raise user_error(
            f"model_input at index {index} has token ids outside the vocabulary "
            f"[0, {vocab_size}): {bad_inputs[:5]}"
        )

    target_tokens = _tensor(datum, "target_tokens")
    if target_tokens is None:
        raise user_error(
            f"datum at index {index} has no loss_fn_inputs['target_tokens']; cross_entropy "
            "needs one target token (shape [T]) or K target tokens (shape [T, K]) per input position"
        )
    if target_tokens.dtype != torch.int64:
        raise user_error(
            f"target_tokens at index {index} must be int64 token ids, got {target_tokens.dtype}"
        )
    if target_tokens.ndim not in (1, 2):
        raise user_error(
            f"target_tokens at index {index} must have shape [T] or [T, K], "
            f"got shape {list(target_tokens.shape)}"
        )
    if target_tokens.shape[0] != token_count:
        # Tinker's own wording, so a search for the message finds both.
        raise user_error(
            f"input sequence and target_tokens at index {index} must agree on sequence length: "
            f"target_tokens.shape[0]={target_tokens.shape[0]} token_count={token_count}"
        )
    if target_tokens.ndim == 2 and target_tokens.shape[1] == 0:
        raise user_error(f"target_tokens at index {index} has K=0 tokens per position")
    outside = target_tokens[(target_tokens < 0) | (target_tokens >= vocab_size)]
    if outside.numel():
        raise user_error(
            f"target_tokens at index {index} has token ids outside the vocabulary "
            f"[0, {vocab_size}): {outside[:5].tolist()}"
        )

    weights = _tensor(datum, "weights")
    if weights is None:
        if require_weights:
            # Neither the SDK nor Tinker's docs say what the server does without weights, so
            # the engine teaches no default: it refuses, and says how to write what you mean.
            raise user_error(
                f"datum at index {index} has no loss_fn_inputs['weights']; cross_entropy needs "
                f"weights of the same shape as target_tokens ({list(target_tokens.shape)}). Pass 0 "
                "on the entries you do not score and your weight (e.g. 1) on those you do."
            )
        weights = torch.zeros(target_tokens.shape, dtype=torch.float32)
    if list(weights.shape) != list(target_tokens.shape):
        raise user_error(
            f"weights and target_tokens at index {index} must have the same shape: "
            f"weights.shape={list(weights.shape)} target_tokens.shape={list(target_tokens.shape)}"
        )
    weights = weights.to(torch.float32)
    if not torch.isfinite(weights).all():
        raise user_error(f"weights at index {index} contain NaN or infinite values")
    return CheckedDatum(input_ids, target_tokens, weights)


def check_data(data: Sequence[types.Datum], vocab_size: int, require_weights: bool = True) -> list[CheckedDatum]:
    """Every datum checked (see ``check_datum``); callers have already refused empty data."""
    return [check_datum(i, datum, vocab_size, require_weights) for i, datum in enumerate(data)]


def check_scalar_loss(loss: object, where: str) -> torch.Tensor:
    """``loss`` as a 0-d tensor, or an error if it is not a finite one-element tensor."""
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{where} must return (loss, metrics) with loss a torch.Tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"{where} must return a scalar loss, got shape {list(loss.shape)}")
    if not torch.isfinite(loss.detach()).all():
        raise ValueError(
            f"{where} returned a non-finite loss ({loss.item()}); nothing was applied. "
            "Check for log(0) or division by zero (e.g. a target probability of 0 inside a log)."
        )
    return loss.reshape(())


def check_adam_params(params: object) -> types.AdamParams:
    """``params`` if it is an AdamParams the server accepts, else the server's rejection."""
    if not isinstance(params, types.AdamParams):
        raise TypeError(f"optim_step takes tinker.AdamParams, got {type(params).__name__}")
    problems = []
    if not (math.isfinite(params.learning_rate) and params.learning_rate >= 0):
        problems.append(f"learning_rate={params.learning_rate} must be finite and >= 0")
    for name in ("beta1", "beta2"):
        value = getattr(params, name)
        if not 0 <= value < 1:
            problems.append(f"{name}={value} must be in [0, 1)")
    if not params.eps > 0:
        problems.append(f"eps={params.eps} must be > 0")
    if not params.weight_decay >= 0:
        problems.append(f"weight_decay={params.weight_decay} must be >= 0")
    if not params.grad_clip_norm >= 0:
        problems.append(f"grad_clip_norm={params.grad_clip_norm} must be >= 0 (0 turns clipping off)")
    if problems:
        raise user_error("invalid AdamParams: " + "; ".join(problems))
    return params


def check_handle_input_shapes(inputs: Sequence, data: Sequence[types.Datum]) -> None:
    """Each input a loss handle reads has the shape its rank stands for in the SDK
    (``tinker.types.CustomLossInputRank``: 0 is a scalar, 1 is ``[T]``, 2 is ``[T, K]``,
    T = the datum's ``target_tokens.shape[0]``). The SDK's ``check_loss_inputs`` compares
    ranks only; a ``[K]`` vector declared as rank 1 passes it but is not ``[T]``."""
    for i, datum in enumerate(data):
        T = _shape(datum.loss_fn_inputs["target_tokens"])[0]
        for loss_input in inputs:
            shape = _shape(datum.loss_fn_inputs[loss_input.name])
            if loss_input.rank in (1, 2) and shape[0] != T:
                meaning = "[T]" if loss_input.rank == 1 else "[T, K]"
                raise ValueError(
                    f"datum[{i}] loss_fn_inputs[{loss_input.name!r}] has shape {list(shape)}, but "
                    f"rank {loss_input.rank} means {meaning} with T = {T} (target_tokens rows). "
                    "Put a per-datum vector on the scored row of a [T, K] array and declare rank 2."
                )


def _shape(tensor_data: types.TensorData) -> list[int]:
    """A TensorData's shape; the SDK leaves ``shape`` None for 1-D data (rank 1 in
    ``check_loss_inputs``)."""
    return list(tensor_data.shape) if tensor_data.shape is not None else [len(tensor_data.data)]
