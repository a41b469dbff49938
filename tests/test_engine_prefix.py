"""A batch's shared prompt prefix is run once, prompts of very different lengths run in
separate passes, and neither changes any result.

The book's prompts share their first 20 tokens (the system prompt and the chat template);
``lora.LocalModel.hidden_states`` runs those once per micro-batch and lets each prompt's own
tokens attend to their cached keys and values, in groups of similar length
(``lora.padding_groups``). Each test is aimed at a bug a reviewer could plant: the prefix's
gradient taken from one datum instead of summed over all of them, the rest of a prompt at
the wrong positions, a padding mask that leaves out the prefix, rows put back in the wrong
order after grouping, a prompt with nothing of its own left, shared rows normalised or
back-propagated once per reader.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinker import types

import emotion_task
import token_set
import tinker_offline
from tinker_offline import lora, model_store
from tinker_offline.gathered_logprobs import gathered_logprobs

from engine_support import TRAIN, assert_close_relative_to_scale, clear_gradients, new_client

#: The book's prompts differ after their 20th token.
BOOK_PREFIX = 20


def test_gathered_logprobs_of_shared_rows_match_full_log_softmax():
    torch.manual_seed(0)
    hidden = torch.randn(7, 12, dtype=torch.float64, requires_grad=True)
    unembedding = torch.randn(50, 12, dtype=torch.float64, requires_grad=True)
    row_of = torch.tensor([0, 1, 2, 0, 1, 3, 4, 0, 1, 5, 6, 6])  # rows 0, 1 read three times
    ids = torch.randint(0, 50, (12, 3))
    assert torch.autograd.gradcheck(lambda h, w: gathered_logprobs(h, w, ids, row_of), (hidden, unembedding))
    full = torch.log_softmax(hidden[row_of] @ unembedding.T, -1).gather(1, ids)
    torch.testing.assert_close(gathered_logprobs(hidden, unembedding, ids, row_of), full)
    # gradcheck sends one output's gradient at a time; the readers of a shared row must also
    # add up when they all carry one.
    upstream = torch.randn(12, 3, dtype=torch.float64)
    expected = torch.autograd.grad((full * upstream).sum(), (hidden, unembedding))
    got = torch.autograd.grad((gathered_logprobs(hidden, unembedding, ids, row_of) * upstream).sum(), (hidden, unembedding))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize(
    ("prompts", "shared"),
    [
        ([list(range(30))], 0),  # one prompt: nothing to share
        ([list(range(30)), list(range(20)) + [99] * 5], 20),
        ([list(range(30)), list(range(30))], 29),  # identical: each keeps its last token
        ([list(range(12)), list(range(30))], 11),  # one is the other's start
        ([list(range(30)), [0, 1, 2] + list(range(50, 80))], 0),  # under MIN_SHARED_PREFIX
    ],
)
def test_shared_prefix_length(prompts, shared):
    assert lora.shared_prefix_length(prompts) == shared


@pytest.mark.parametrize(
    ("lengths", "groups"),
    [
        ([5], [[0]]),
        ([22, 25, 29, 24], [[0, 3, 1, 2]]),  # close lengths: one pass
        ([30, 100, 35, 110, 32, 105], [[0, 4, 2], [1, 5, 3]]),  # short and long: two
        ([3000, 3001], [[0, 1]]),
    ],
)
def test_padding_groups(lengths, groups):
    assert lora.padding_groups(lengths) == groups


def book_datum(tokenizer, example, extra_row: int) -> types.Datum:
    """The book's [T, K] datum, with a weight also on ``extra_row`` (inside the shared prefix),
    so the gradient runs through the shared rows' own logprobs as well as through their keys
    and values."""
    tokens = emotion_task.build_prompt_tokens(tokenizer, emotion_task.SYSTEM_PROMPT, example["text"], emotion_task.ANSWER_PREFIX)
    datum = token_set.build_datum(
        types.ModelInput.from_ints(tokens), token_set.target_vector(example["target"], emotion_task.LABELS),
        token_set.label_token_ids(tokenizer, emotion_task.LABELS),
    )
    weights = datum.loss_fn_inputs["weights"].to_numpy().copy()
    weights[extra_row, :3] = [0.5, 0.25, 0.25]
    return types.Datum(model_input=datum.model_input, loss_fn_inputs={
        "target_tokens": datum.loss_fn_inputs["target_tokens"], "weights": weights,
        "target_distribution": datum.loss_fn_inputs["target_distribution"],
    })


def kl_at_last_row(data, logprobs_list):
    """The book's loss: KL(p || q) at row T-1, q renormalised over the K labels."""
    total = torch.zeros(())
    for datum, logprobs in zip(data, logprobs_list):
        log_q = logprobs[-1] - torch.logsumexp(logprobs[-1], dim=-1)
        p = datum.loss_fn_inputs["target_distribution"].to_torch()[-1]
        total = total + (torch.xlogy(p, p) - p * log_q).sum()
    return total, {}


@pytest.fixture(scope="module")
def book_data():
    tokenizer = model_store.load_tokenizer(tinker_offline.DEFAULT_BASE_MODEL)
    # Four of the book's short prompts around one long one: two passes after the prefix.
    long_example = {"text": " ".join(example["text"] for example in TRAIN), "target": TRAIN[0]["target"]}
    examples = [*TRAIN[:2], long_example, *TRAIN[2:4]]
    data = [book_datum(tokenizer, example, extra_row=5 + i) for i, example in enumerate(examples)]
    prompts = [d.model_input.to_ints() for d in data]
    assert lora.shared_prefix_length(prompts) == BOOK_PREFIX
    assert len({len(p) for p in prompts}) > 2, "the test needs the padding mask"
    assert sorted(map(sorted, lora.padding_groups([len(p) - BOOK_PREFIX for p in prompts]))) == [[0, 1, 3, 4], [2]]
    return data


def perturbed_client():
    """A client whose LoRA B matrices are not zero (the same noise every call), so the
    adapters change every hidden state, the prefix's included."""
    client = new_client(rank=4, seed=3)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in client._model.trainable:
            p.add_(0.02 * torch.randn(p.shape, generator=generator))
    return client


@pytest.mark.parametrize("route", ["cross_entropy", "callable"])
def test_a_shared_prefix_gives_the_results_of_full_prompts(book_data, route, monkeypatch):
    """Slow: four forward/backward passes of the real model on the book's prompts."""
    results, gradients, inputs = {}, {}, {}
    # "full": no prefix sharing and one padded pass, the engine as it was before either.
    for name, off in (("shared", False), ("full", True)):
        if off:
            monkeypatch.setattr(lora, "MIN_SHARED_PREFIX", 10**9)
            monkeypatch.setattr(lora, "PASS_COST_TOKENS", 10**9)
        client = perturbed_client()
        shapes = []
        client._model.decoder.register_forward_pre_hook(
            lambda _module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
        clear_gradients(client)
        if route == "cross_entropy":
            results[name] = client.forward_backward(book_data, "cross_entropy").result()
        else:
            results[name] = client.forward_backward_custom(book_data, kl_at_last_row).result()
        gradients[name] = client.accumulated_gradients()
        inputs[name] = shapes[:3] if route == "cross_entropy" else shapes[:6]
    lengths = [d.model_input.length - BOOK_PREFIX for d in book_data]
    one_pass = [(1, BOOK_PREFIX), (4, max(lengths[:2] + lengths[3:])), (1, lengths[2])]
    assert inputs["shared"] == one_pass * (1 if route == "cross_entropy" else 2)
    assert set(inputs["full"]) == {(5, max(lengths) + BOOK_PREFIX)}
    shared, full = results["shared"], results["full"]
    assert shared.metrics["loss:sum"] == pytest.approx(full.metrics["loss:sum"], rel=1e-5)
    for a, b in zip(shared.loss_fn_outputs, full.loss_fn_outputs, strict=True):
        torch.testing.assert_close(a["logprobs"].to_torch(), b["logprobs"].to_torch(), atol=2e-4, rtol=1e-5)
    # Float32 sums in another order differ by about 1e-5 of a tensor's scale; a prefix
    # gradient taken from one datum instead of four is off by tens of percent.
    assert_close_relative_to_scale(gradients["shared"], gradients["full"], rel=1e-3)


def test_prompts_identical_but_for_their_last_token(monkeypatch):
    """Every position but the last is shared; the last rows still see their whole prompt."""
    tokenizer = model_store.load_tokenizer(tinker_offline.DEFAULT_BASE_MODEL)
    base = emotion_task.build_prompt_tokens(tokenizer, emotion_task.SYSTEM_PROMPT, TRAIN[0]["text"], emotion_task.ANSWER_PREFIX)
    prompts = [base, base[:-1] + [tokenizer.encode(" Feeling", add_special_tokens=False)[0]]]
    data = [types.Datum(model_input=types.ModelInput.from_ints(p), loss_fn_inputs={
        "target_tokens": np.asarray(p[1:] + [0], dtype=np.int64), "weights": np.ones(len(p), dtype=np.float32)})
        for p in prompts]
    outputs = {}
    for name, min_shared in (("shared", lora.MIN_SHARED_PREFIX), ("full", 10**9)):
        monkeypatch.setattr(lora, "MIN_SHARED_PREFIX", min_shared)
        result = perturbed_client().forward(data, "cross_entropy").result()
        outputs[name] = [o["logprobs"].to_torch() for o in result.loss_fn_outputs]
    for a, b in zip(outputs["shared"], outputs["full"], strict=True):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-5)
    assert not torch.equal(outputs["shared"][0][-1], outputs["shared"][1][-1])
