"""``SamplingClient``: what a snapshot of the trained weights answers.

``sample`` draws completions token by token (temperature, top-k, top-p, stop tokens or
strings, max_tokens, seed), with the prompt's logprobs and its top-k prompt logprobs on
request, and ``compute_logprobs`` scores a prompt, both shaped like tinker's responses.
Prompts may hold image chunks: each image position gets the engine's placeholder input
(see ``images``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from tinker import types
from tinker.lib.public_interfaces.api_future import APIFuture
from tinker.lib.public_interfaces.sampling_client import SamplingClient as _SdkSamplingClient
from tinker.lib.public_interfaces.sampling_client import _check_prompt_logprobs_last_n
from typing_extensions import deprecated

from . import model_store
from .futures import run_now
from .lora import AdapterSnapshot
from .validation import model_input_ids, reject_unimplemented

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

NO_STABILITY_INFO = "StableReinforce stability information is not recorded offline; leave it False"


class SamplingClient:
    """Offline twin of ``tinker.SamplingClient``: sampling and prompt scoring on one model.

    Get one from ``ServiceClient.create_sampling_client`` or
    ``TrainingClient.save_weights_and_get_sampling_client``.
    """

    def __init__(self, base_model: str, model: torch.nn.Module):
        self.base_model = base_model
        self._model = model
        self._model.eval()
        self._device = next(model.parameters()).device  # model_store.compute_device

    @classmethod
    def from_snapshot(cls, snapshot: AdapterSnapshot) -> "SamplingClient":
        """A sampler on saved LoRA weights."""
        return cls(snapshot.base_model, snapshot.load())

    @classmethod
    def for_base_model(cls, base_model: str) -> "SamplingClient":
        """A sampler on the base model itself (no adapters)."""
        return cls(base_model, model_store.build_causal_lm(model_store.load_base_model(base_model)))

    def get_tokenizer(self) -> PreTrainedTokenizerBase:
        """The base model's Hugging Face tokenizer."""
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
        topk_sample_logprobs: int = 0,
        target_prompt_logprobs: types.TensorData | None = None,
        prompt_alt_tokens_k: int = 0,
        prompt_logprobs_last_n: int | None = None,
    ) -> APIFuture[types.SampleResponse]:
        """Draw `num_samples` completions of `prompt`, token by token.

        Args:
        - `prompt`: the prompt (text and image chunks); L = its length
        - `num_samples`: how many independent completions
        - `sampling_params`: every field works: `max_tokens` (64 if None), `temperature` (0:
          greedy), `top_k`, `top_p`, `stop` (None: EOS and `<|im_end|>`; token ids and/or
          strings; `[]`: none) and `seed` (None: from torch's global RNG)
        - `include_prompt_logprobs`: add `prompt_logprobs`, `[L]`: log p(token i | tokens
          before it), None at position 0
        - `topk_prompt_logprobs`: K > 0 adds `topk_prompt_logprobs`, `[L]`: for each position
          the K most likely tokens there as `(token_id, logprob)`, None at position 0
        - `prompt_logprobs_last_n`: N: only the last N positions of both are scored, earlier
          ones are None (needs `include_prompt_logprobs`; 1 <= N <= L - 1)
        - `topk_sample_logprobs`, `target_prompt_logprobs`, `prompt_alt_tokens_k`: not
          implemented offline; NotImplementedError unless left at their defaults

        Returns:
        - `APIFuture` of `SampleResponse`: `sequences[i].tokens` and `.logprobs` (`[n_i]`,
          each token's logprob under the sampling distribution), `stop_reason` `"stop"` or
          `"length"`
        """
        for option, value, default, what_to_do in (
            ("topk_sample_logprobs", topk_sample_logprobs, 0,
             "score the sampled tokens with TrainingClient.forward and [T, K] target_tokens"),
            ("target_prompt_logprobs", target_prompt_logprobs, None,
             "score chosen ids with TrainingClient.forward and [T, K] target_tokens"),
            ("prompt_alt_tokens_k", prompt_alt_tokens_k, 0,
             "draw alternatives with sample() on each prefix, or use topk_prompt_logprobs"),
        ):
            reject_unimplemented(option, value, default, what_to_do)
        _check_prompt_logprobs_last_n(prompt_logprobs_last_n, include_prompt_logprobs)
        return run_now(
            lambda: self._sample(
                prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs,
                prompt_logprobs_last_n,
            ),
            types.SampleResponse,
        )

    @deprecated(_SdkSamplingClient.sample_async.__deprecated__, category=FutureWarning)
    async def sample_async(self, prompt, num_samples, sampling_params, *args, **kwargs) -> types.SampleResponse:
        """The deprecated async form of `sample`, with its arguments."""
        return self.sample(prompt, num_samples, sampling_params, *args, **kwargs).result()

    @torch.no_grad()
    def _sample(self, prompt, num_samples, params: types.SamplingParams, include_prompt_logprobs, topk,
                last_n) -> types.SampleResponse:
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
        out = self._model(input_ids=input_ids.to(self._device), use_cache=True)
        prompt_logprobs = topk_lists = None
        if include_prompt_logprobs or topk:
            log_probs = _next_token_logprobs(out.logits[0])
        if include_prompt_logprobs:
            prompt_logprobs = _only_last_n(_prompt_logprobs(log_probs, input_ids[0]), last_n)
        if topk:
            best = torch.topk(log_probs, min(topk, log_probs.shape[-1]), dim=-1)
            topk_lists = _only_last_n([None] + [
                list(zip(ids, values)) for ids, values in zip(best.indices.tolist(), best.values.tolist())
            ], last_n)
        logits = out.logits[:, -1].float().cpu()  # drawn on the CPU, with the seeded CPU generator
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
            out = self._model(input_ids=next_ids[:, None].to(self._device), cache=cache, use_cache=True)
            logits, cache = out.logits[:, -1].float().cpu(), out.cache
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

    def compute_logprobs(
        self, prompt: types.ModelInput, prompt_logprobs_last_n: int | None = None
    ) -> APIFuture[list[float | None]]:
        """Score the prompt's tokens.

        Args:
        - `prompt`: at least 2 positions; L = its length
        - `prompt_logprobs_last_n`: N: score only the last N tokens (1 <= N <= L - 1)

        Returns:
        - `APIFuture` of a list of L values: log p(token i | tokens before it), None at
          position 0 and before the last N
        """
        _check_prompt_logprobs_last_n(prompt_logprobs_last_n, include_prompt_logprobs=True)
        return run_now(lambda: self._compute_logprobs(prompt, prompt_logprobs_last_n), list)

    @deprecated(_SdkSamplingClient.compute_logprobs_async.__deprecated__, category=FutureWarning)
    async def compute_logprobs_async(
        self, prompt: types.ModelInput, prompt_logprobs_last_n: int | None = None
    ) -> list[float | None]:
        return self.compute_logprobs(prompt, prompt_logprobs_last_n).result()

    @torch.no_grad()
    def _compute_logprobs(self, prompt, last_n) -> list[float | None]:
        tokens = model_input_ids(0, prompt)
        if len(tokens) < 2:
            raise ValueError("compute_logprobs needs a prompt of at least 2 tokens")
        ids = torch.tensor([tokens])
        logits = self._model(input_ids=ids.to(self._device)).logits[0]
        return _only_last_n(_prompt_logprobs(_next_token_logprobs(logits), ids[0]), last_n)


def _next_token_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """[L, vocab] logits -> [L - 1, vocab] log-probabilities; row t predicts token t + 1."""
    return torch.log_softmax(logits[:-1].float(), -1).cpu()


def _prompt_logprobs(log_probs: torch.Tensor, ids: torch.Tensor) -> list[float | None]:
    """Each of the L prompt tokens' logprob (``ids``: [L]); None for the first, which
    nothing predicts."""
    return [None] + log_probs.gather(1, ids[1:, None]).squeeze(1).tolist()


def _only_last_n(values: list, last_n: int | None) -> list:
    """``values`` with every entry before the last ``last_n`` set to None (all kept: None)."""
    if last_n is None:
        return values
    if not 1 <= last_n <= len(values) - 1:
        raise ValueError(f"prompt_logprobs_last_n must be between 1 and {len(values) - 1}, got {last_n}")
    return [None] * (len(values) - last_n) + values[-last_n:]


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
