"""Shared pieces of the engine tests: a tiny emotion task on the real offline model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinker import types

import tinker_offline

BASE_MODEL = tinker_offline.DEFAULT_BASE_MODEL
SYSTEM_PROMPT = "You label the emotion a sentence expresses, with one word."
LABELS = ["joy", "sadness", "anger", "fear", "surprise", "disgust"]

# (sentence, target distribution over LABELS): written for these tests.
TRAIN = [
    ("I finally got the job I had wanted for years!", [0.8, 0.0, 0.0, 0.0, 0.2, 0.0]),
    ("My old dog died in his sleep this morning.", [0.0, 0.9, 0.0, 0.1, 0.0, 0.0]),
    ("Someone scratched a long line down my new car.", [0.0, 0.1, 0.8, 0.0, 0.0, 0.1]),
    ("There is a strange noise downstairs and I live alone.", [0.0, 0.0, 0.0, 0.9, 0.1, 0.0]),
    ("My friends threw me a party I never saw coming.", [0.5, 0.0, 0.0, 0.0, 0.5, 0.0]),
    ("The milk in the fridge had turned into lumps.", [0.0, 0.0, 0.1, 0.0, 0.1, 0.8]),
]
HELDOUT = [
    ("We won the final match in the last second!", [0.7, 0.0, 0.0, 0.0, 0.3, 0.0]),
    ("The doctor called with bad news about my mother.", [0.0, 0.7, 0.0, 0.3, 0.0, 0.0]),
    ("The waiter spat in my soup right in front of me.", [0.0, 0.0, 0.5, 0.0, 0.0, 0.5]),
]


def prompt_tokens(tokenizer, sentence: str) -> list[int]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": sentence}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text + "Emotion:", add_special_tokens=False)


def label_ids(tokenizer) -> list[int]:
    return [tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in LABELS]


def set_datum(tokenizer, sentence: str, target: list[float]) -> types.Datum:
    """K label ids at the answer row T-1 (copies elsewhere), zero weights, plus the target
    as a [T, K] array with the distribution on row T-1 (rank 2, a shape the SDK documents)."""
    tokens = prompt_tokens(tokenizer, sentence)
    ids = label_ids(tokenizer)
    target_tokens = np.tile(np.asarray(ids, dtype=np.int64), (len(tokens), 1))
    target_distribution = np.zeros(target_tokens.shape, dtype=np.float32)
    target_distribution[-1] = target
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={
            "target_tokens": target_tokens,
            "weights": np.zeros(target_tokens.shape, dtype=np.float32),
            "target_distribution": target_distribution,
        },
    )


def set_kl_callable(data, logprobs_list):
    """Sum over datums of KL(target || model renormalized over the label set) at row T-1."""
    total = torch.zeros(())
    for datum, logprobs in zip(data, logprobs_list, strict=True):
        target = datum.loss_fn_inputs["target_distribution"].to_torch()[-1]
        log_q = logprobs[-1] - torch.logsumexp(logprobs[-1], dim=-1)
        total = total + (torch.xlogy(target, target) - target * log_q).sum()
    return total, {"set_kl:sum": float(total.detach())}


def set_kl_per_datum(logprobs, target_distribution):
    """The same loss for one datum, in the form create_custom_loss traces."""
    p = target_distribution[-1]
    log_q = logprobs[-1] - torch.logsumexp(logprobs[-1], dim=-1)
    kl = (torch.xlogy(p, p) - p * log_q).sum()
    return kl, {"custom/set_kl:sum": kl}


def mean_set_kl(training_client, data) -> float:
    result = training_client.forward(data, "cross_entropy").result()
    logprobs = [out["logprobs"].to_torch() for out in result.loss_fn_outputs]
    loss, _ = set_kl_callable(data, logprobs)
    return float(loss) / len(data)


def new_client(service_client=None, rank: int = 8, seed: int = 0):
    service_client = service_client or tinker_offline.ServiceClient()
    return service_client.create_lora_training_client(base_model=BASE_MODEL, rank=rank, seed=seed).result()


def assert_same_tensors(a: dict, b: dict, atol: float = 0.0, rtol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if a[key] is None or b[key] is None:
            assert a[key] is None and b[key] is None, key
        else:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=rtol, msg=lambda m: f"{key}: {m}")


@pytest.fixture(scope="module")
def client():
    """A fresh rank-8 LoRA client per test module (import this fixture by name)."""
    return new_client()


@pytest.fixture(scope="module")
def tokenizer(client):
    return client.get_tokenizer()


# ---------------------------------------------------------------- numeric-test helpers
#: Short sentences of different token lengths (6, 10, 6 and 14 tokens with SmolLM2's
#: tokenizer), so that batches mix lengths and stay cheap.
SHORT_SENTENCES = [
    "The bus left without me.",
    "We won the final match in the last second!",
    "The milk had gone sour.",
    "My sister drove four hours to help me move into the new flat.",
]


def next_token_datum(tokenizer, sentence: str, scale: float = 1.0) -> types.Datum:
    """A rank-1 cross_entropy datum: row t scores token t + 1 (the last row scores EOS),
    with a different weight on every row (0.5 .. 1.5, times ``scale``)."""
    tokens = tokenizer.encode(sentence, add_special_tokens=False)
    targets = np.asarray(tokens[1:] + [tokenizer.eos_token_id], dtype=np.int64)
    weights = (scale * np.linspace(0.5, 1.5, len(tokens))).astype(np.float32)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": targets, "weights": weights},
    )


def forward_logprobs(training_client, data) -> list[torch.Tensor]:
    """The training client's cross_entropy forward logprobs of each datum."""
    result = training_client.forward(data, "cross_entropy").result()
    return [out["logprobs"].to_torch() for out in result.loss_fn_outputs]


def clear_gradients(training_client) -> None:
    """Drop the accumulated gradients without moving the weights: an AdamW step with
    learning rate 0 multiplies by (1 - 0 * weight_decay) and adds 0 * update."""
    training_client.optim_step(types.AdamParams(learning_rate=0.0)).result()


def lora_module(parameter_name: str) -> str:
    """The adapted module of a LoRA tensor: ``...layers.3.mlp.up_proj.lora_A.default.weight``
    -> ``up_proj``; ``...lm_head.lora_B.default.weight`` -> ``lm_head``."""
    return parameter_name.split(".lora_")[0].rsplit(".", 1)[-1]


def global_norm(tensors) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)))


def assert_close_relative_to_scale(a: dict, b: dict, rel: float) -> None:
    """Each tensor of ``a`` within ``rel`` x (largest |entry| of that tensor of ``b``) of it:
    for float32 sums taken in a different order (padding, micro-batches), whose rounding
    is relative to the tensor's scale, not to each entry."""
    assert a.keys() == b.keys()
    for key in a:
        scale = float(b[key].abs().max())
        torch.testing.assert_close(a[key], b[key], atol=rel * scale, rtol=0, msg=lambda m: f"{key}: {m}")
