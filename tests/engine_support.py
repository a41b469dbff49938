"""Shared pieces of the engine tests: the book's emotion task (emotion_task) on the real offline model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinker import types

import emotion_task
import token_set
import tinker_offline

BASE_MODEL = tinker_offline.DEFAULT_BASE_MODEL

# Sentences and targets written for these tests (not the book's data), as examples of the
# book's task: targets over emotion_task.LABELS (labels left out are 0). HELDOUT is never
# trained on.
TRAIN = [
    {"text": "I finally got the job I had wanted for years!", "target": {"joy": 0.8, "surprise": 0.2}},
    {"text": "My old dog died in his sleep this morning.", "target": {"sadness": 0.9, "fear": 0.1}},
    {"text": "Someone scratched a long line down my new car.", "target": {"sadness": 0.1, "anger": 0.8, "disgust": 0.1}},
    {"text": "There is a strange noise downstairs and I live alone.", "target": {"fear": 0.9, "surprise": 0.1}},
    {"text": "My friends threw me a party I never saw coming.", "target": {"joy": 0.5, "surprise": 0.5}},
    {"text": "The milk in the fridge had turned into lumps.", "target": {"anger": 0.1, "surprise": 0.1, "disgust": 0.8}},
]
HELDOUT = [
    {"text": "We won the final match in the last second!", "target": {"joy": 0.7, "surprise": 0.3}},
    {"text": "The doctor called with bad news about my mother.", "target": {"sadness": 0.7, "fear": 0.3}},
    {"text": "The waiter spat in my soup right in front of me.", "target": {"anger": 0.5, "disgust": 0.5}},
]


def task_datum(tokenizer, example: dict) -> types.Datum:
    """The book's datum for one example (token_set.build_datum): [T, K] label ids on row
    T-1, the target as weights there and again as target_distribution."""
    tokens = emotion_task.build_prompt_tokens(tokenizer, emotion_task.SYSTEM_PROMPT, example["text"], emotion_task.ANSWER_PREFIX)
    target = token_set.target_vector(example["target"], emotion_task.LABELS)
    return token_set.build_datum(types.ModelInput.from_ints(tokens), target, token_set.label_token_ids(tokenizer, emotion_task.LABELS))


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
