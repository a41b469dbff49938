"""``SamplingClient``: what a snapshot of the trained weights answers.

``sample`` draws completions token by token (temperature, top-k, top-p, stop tokens or
strings, max_tokens, seed), with the prompt's logprobs and its top-k prompt logprobs on
request, and ``compute_logprobs`` scores a prompt, both shaped like tinker's responses.
Prompts may hold image chunks: each image position gets the engine's placeholder input
(see ``images``).
"""

from __future__ import annotations

import uuid
from typing import Sequence

import numpy as np
import torch
from tinker import types
from tinker.lib.public_interfaces.sampling_client import SamplingClient as _SdkSamplingClient
from typing_extensions import deprecated

from . import model_store
from .futures import run_now
from .validation import model_input_ids


class SamplingClient:
    def __init__(self, base_model: str, peft_model):
        self.base_model = base_model
        self._model = peft_model
        self._model.eval()

    @classmethod
    def from_snapshot(cls, snapshot: model_store.AdapterSnapshot) -> "SamplingClient":
        """A sampler on saved LoRA weights."""
        from .training_client import build_lora_model

        model = build_lora_model(model_store.load_base_model(snapshot.base_model), snapshot.rank, None, list(snapshot.targets))
        missing = set(snapshot.adapter) - set(model.state_dict())
        if missing:
            raise RuntimeError(f"adapter tensors do not match the model: {sorted(missing)[:3]}")
        model.load_state_dict(snapshot.adapter, strict=False)
        return cls(snapshot.base_model, model)

    @classmethod
    def for_base_model(cls, base_model: str) -> "SamplingClient":
        """A sampler on the base model itself (no adapters)."""
        return cls(base_model, model_store.build_causal_lm(model_store.load_base_model(base_model)))

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
        **unsupported,
    ):
        """``num_samples`` completions of ``prompt``, as a future of ``tinker.SampleResponse``.

        ``include_prompt_logprobs`` adds ``prompt_logprobs`` (``[len(prompt)]``, None first);
        ``topk_prompt_logprobs=K`` adds ``topk_prompt_logprobs``: for each prompt position the K
        most likely tokens there as ``(token_id, logprob)``, None for the first position.
        """
        used = {k: v for k, v in unsupported.items() if v not in (None, 0, False)}
        if used:
            raise NotImplementedError(f"tinker_offline's sample does not implement {sorted(used)}")
        return run_now(
            lambda: self._sample(prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs),
            types.SampleResponse,
        )

    @deprecated(_SdkSamplingClient.sample_async.__deprecated__, category=FutureWarning)
    async def sample_async(self, prompt, num_samples, sampling_params, include_prompt_logprobs=False, topk_prompt_logprobs=0, **unsupported):
        return self.sample(prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs, **unsupported).result()

    @torch.no_grad()
    def _sample(self, prompt, num_samples, params: types.SamplingParams, include_prompt_logprobs, topk) -> types.SampleResponse:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if params.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {params.temperature}")
        if topk < 0:
            raise ValueError(f"topk_prompt_logprobs must be >= 0, got {topk}")
        tokens = model_input_ids(0, prompt)
        if not tokens:
            raise ValueError("prompt is empty")
        max_tokens = params.max_tokens if params.max_tokens is not None else 64
        stop_ids = self._stop_token_ids(params.stop)
        stop_strings = [s for s in ([params.stop] if isinstance(params.stop, str) else params.stop or []) if isinstance(s, str)]
        generator = torch.Generator().manual_seed(params.seed if params.seed is not None else int(torch.randint(0, 2**31, ())))
        tokenizer = self.get_tokenizer()

        input_ids = torch.tensor([tokens] * num_samples)
        out = self._model(input_ids=input_ids, use_cache=True)
        prompt_logprobs = topk_lists = None
        if include_prompt_logprobs or topk:
            # Row t of the logits predicts token t + 1, so prompt token i is scored by row i - 1.
            log_probs = torch.log_softmax(out.logits[0, :-1].float(), -1)
        if include_prompt_logprobs:
            prompt_logprobs = [None] + log_probs.gather(1, input_ids[0, 1:, None]).squeeze(1).tolist()
        if topk:
            best = torch.topk(log_probs, min(topk, log_probs.shape[-1]), dim=-1)
            topk_lists = [None] + [
                list(zip(ids, values)) for ids, values in zip(best.indices.tolist(), best.values.tolist())
            ]
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
        return types.SampleResponse(
            sequences=sequences, _prompt_logprobs_list=prompt_logprobs, _topk_prompt_logprobs_list=topk_lists
        )

    def compute_logprobs(self, prompt: types.ModelInput, prompt_logprobs_last_n: int | None = None):
        """log p(token_i | tokens before it) for each prompt token; None for the first."""
        return run_now(lambda: self._compute_logprobs(prompt, prompt_logprobs_last_n), list)

    @deprecated(_SdkSamplingClient.compute_logprobs_async.__deprecated__, category=FutureWarning)
    async def compute_logprobs_async(self, prompt: types.ModelInput, prompt_logprobs_last_n: int | None = None):
        return self.compute_logprobs(prompt, prompt_logprobs_last_n).result()

    @torch.no_grad()
    def _compute_logprobs(self, prompt, last_n) -> list[float | None]:
        tokens = model_input_ids(0, prompt)
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
