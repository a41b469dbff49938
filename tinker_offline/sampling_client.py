"""``SamplingClient``: what a snapshot of the trained weights answers.

``sample`` draws completions token by token (temperature, top-k, top-p, stop tokens or
strings, max_tokens, seed), and ``compute_logprobs`` scores a prompt, both shaped like
tinker's responses.
"""

from __future__ import annotations

import uuid
from typing import Sequence

import numpy as np
import torch
from tinker import types

from . import model_store
from .futures import run_now


class SamplingClient:
    def __init__(self, base_model: str, peft_model):
        self.base_model = base_model
        self._model = peft_model
        self._model.eval()

    @classmethod
    def from_adapter(cls, base_model: str, rank: int, targets: list[str], adapter: dict[str, torch.Tensor]) -> "SamplingClient":
        from .training_client import build_lora_model

        model = build_lora_model(model_store.load_base_model(base_model), rank, None, targets)
        missing = set(adapter) - set(model.state_dict())
        if missing:
            raise RuntimeError(f"adapter tensors do not match the model: {sorted(missing)[:3]}")
        model.load_state_dict(adapter, strict=False)
        return cls(base_model, model)

    def get_tokenizer(self):
        return model_store.load_tokenizer(self.base_model)

    def _stop_token_ids(self, stop) -> set[int]:
        tokenizer = self.get_tokenizer()
        if stop is None:
            ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
            return {i for i in ids if isinstance(i, int) and i >= 0}
        return {s for s in stop if isinstance(s, int)}

    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
    ):
        """``num_samples`` completions of ``prompt``, as a future of ``tinker.SampleResponse``."""
        return run_now(lambda: self._sample(prompt, num_samples, sampling_params, include_prompt_logprobs))

    @torch.no_grad()
    def _sample(self, prompt, num_samples, params: types.SamplingParams, include_prompt_logprobs) -> types.SampleResponse:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if params.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {params.temperature}")
        tokens = prompt.to_ints()
        if not tokens:
            raise ValueError("prompt is empty")
        max_tokens = params.max_tokens if params.max_tokens is not None else 64
        stop_ids = self._stop_token_ids(params.stop)
        stop_strings = [s for s in ([params.stop] if isinstance(params.stop, str) else params.stop or []) if isinstance(s, str)]
        generator = torch.Generator().manual_seed(params.seed if params.seed is not None else int(torch.randint(0, 2**31, ())))
        tokenizer = self.get_tokenizer()

        input_ids = torch.tensor([tokens] * num_samples)
        out = self._model(input_ids=input_ids, use_cache=True)
        prompt_logprobs = None
        if include_prompt_logprobs:
            lp = torch.log_softmax(out.logits[0, :-1].float(), -1).gather(1, input_ids[0, 1:, None]).squeeze(1)
            prompt_logprobs = [None] + lp.tolist()
        logits = out.logits[:, -1].float()
        cache = out.cache
        generated: list[list[int]] = [[] for _ in range(num_samples)]
        logprobs: list[list[float]] = [[] for _ in range(num_samples)]
        done = [None] * num_samples  # stop reason once finished
        for _ in range(max_tokens):
            next_ids, next_lp = _draw(logits, params, generator)
            for i in range(num_samples):
                if done[i]:
                    continue
                token = int(next_ids[i])
                generated[i].append(token)
                logprobs[i].append(float(next_lp[i]))
                text = tokenizer.decode(generated[i]) if stop_strings else ""
                if token in stop_ids or any(s in text for s in stop_strings):
                    done[i] = "stop"
            if all(done):
                break
            out = self._model(input_ids=next_ids[:, None], cache=cache, use_cache=True)
            logits, cache = out.logits[:, -1].float(), out.cache
        sequences = [
            types.SampledSequence(
                stop_reason=done[i] or "length",
                sequence_id=uuid.uuid4().hex,
                tokens_np=np.asarray(generated[i], dtype=np.int32),
                logprobs_np=np.asarray(logprobs[i], dtype=np.float32),
            )
            for i in range(num_samples)
        ]
        if prompt_logprobs is None:
            return types.SampleResponse(sequences=sequences)
        return types.SampleResponse(sequences=sequences, _prompt_logprobs_list=prompt_logprobs)

    def compute_logprobs(self, prompt: types.ModelInput, prompt_logprobs_last_n: int | None = None):
        """log p(token_i | tokens before it) for each prompt token; None for the first."""
        return run_now(lambda: self._compute_logprobs(prompt, prompt_logprobs_last_n))

    @torch.no_grad()
    def _compute_logprobs(self, prompt, last_n) -> list[float | None]:
        tokens = prompt.to_ints()
        if len(tokens) < 2:
            raise ValueError("compute_logprobs needs a prompt of at least 2 tokens")
        if last_n is not None and not 1 <= last_n <= len(tokens) - 1:
            raise ValueError(f"prompt_logprobs_last_n must be between 1 and {len(tokens) - 1}, got {last_n}")
        ids = torch.tensor([tokens])
        logits = self._model(input_ids=ids).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None]).squeeze(1).tolist()
        values: list[float | None] = [None, *lp]
        if last_n is not None:
            values = [None] * (len(values) - last_n) + values[-last_n:]
        return values


def _draw(logits: torch.Tensor, params: types.SamplingParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row, and its log-probability under the sampling distribution."""
    if params.temperature == 0:
        ids = logits.argmax(-1)
        return ids, torch.log_softmax(logits, -1).gather(1, ids[:, None]).squeeze(1)
    scaled = logits / params.temperature
    if params.top_k and params.top_k > 0:
        kth = torch.topk(scaled, min(params.top_k, scaled.shape[-1]), dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if params.top_p < 1:
        sorted_logits, order = torch.sort(scaled, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, -1) > params.top_p
        scaled = scaled.scatter(1, order, sorted_logits.masked_fill(drop, float("-inf")))
    logprobs = torch.log_softmax(scaled, -1)
    ids = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(1)
    return ids, logprobs.gather(1, ids[:, None]).squeeze(1)


__all__: Sequence[str] = ["SamplingClient"]
