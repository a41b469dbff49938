"""The forward and backward passes get their numbers right: sampling clients score what the
training client scores, negative weights push the other way, micro-batching changes no
result, and forward never touches the accumulated gradients.

Each test is aimed at a bug a reviewer could plant: an off-by-one in the sampler's scoring,
a sampler without the trained adapter, weights clamped at 0, a micro-batch dropped or
counted twice, forward running with gradients on.
"""

from __future__ import annotations

import warnings

import numpy as np
import peft
import pytest
import torch
from tinker import types

import tinker_offline
from tinker_offline import model_store

from token_set import forward_logprobs
from engine_support import (
    BASE_MODEL,
    SHORT_SENTENCES,
    assert_close_relative_to_scale,
    assert_same_tensors,
    clear_gradients,
    global_norm,
    lora_module,
    new_client,
    next_token_datum,
)

CLOSE = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def service_client():
    return tinker_offline.ServiceClient()


@pytest.fixture(scope="module")
def tokenizer():
    return model_store.load_tokenizer(BASE_MODEL)


@pytest.fixture(scope="module")
def trained(service_client, tokenizer):
    """A client after two real steps: its adapters, lm_head included, are far from zero."""
    client = new_client(service_client, rank=4, seed=0)
    data = [next_token_datum(tokenizer, s) for s in SHORT_SENTENCES[:2]]
    for _ in range(2):
        client.forward_backward(data, "cross_entropy").result()
        client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    return client


def scored_prompt(tokenizer) -> tuple[list[int], types.Datum]:
    """A held-out sentence, and the datum whose forward logprobs score each next token."""
    datum = next_token_datum(tokenizer, SHORT_SENTENCES[3])
    return datum.model_input.to_ints(), datum


# ------------------------------------------------------------------------ sampling
def test_sampler_scores_prompts_like_the_training_client_after_training(service_client, tokenizer, trained):
    """compute_logprobs and sample(include_prompt_logprobs=True) give log p(token i | tokens
    before i) = the training forward's row i - 1, for both ways of getting a sampler, and
    those are not the base model's numbers (the adapter is in use)."""
    tokens, datum = scored_prompt(tokenizer)
    expected = forward_logprobs(trained, [datum])[0][:-1]
    prompt = types.ModelInput.from_ints(tokens)
    path = trained.save_weights_for_sampler("passes-test").result().path
    samplers = {
        "save_weights_and_get_sampling_client": trained.save_weights_and_get_sampling_client().result(),
        "create_sampling_client(model_path)": service_client.create_sampling_client(model_path=path).result(),
    }
    for how, sampler in samplers.items():
        scored = sampler.compute_logprobs(prompt).result()
        assert scored[0] is None and len(scored) == len(tokens), how
        torch.testing.assert_close(torch.tensor(scored[1:]), expected, **CLOSE, msg=lambda m: f"{how}: {m}")
        response = sampler.sample(prompt, num_samples=1, include_prompt_logprobs=True,
                                  sampling_params=types.SamplingParams(max_tokens=1, temperature=0.0)).result()
        assert response.prompt_logprobs[0] is None, how
        torch.testing.assert_close(torch.tensor(response.prompt_logprobs[1:]), expected, **CLOSE,
                                   msg=lambda m: f"{how} prompt_logprobs: {m}")
    base = service_client.create_sampling_client(base_model=BASE_MODEL).result()
    base_scores = torch.tensor(base.compute_logprobs(prompt).result()[1:])
    assert float((base_scores - expected).abs().max()) > 1e-2, "training moved nothing the sampler could show"


def test_sampled_tokens_logprobs_are_the_trained_models(tokenizer, trained):
    """At temperature 1 without top-k/top-p, each sampled token's logprob is the trained
    model's log p(token | prompt and the tokens sampled before it)."""
    tokens, _ = scored_prompt(tokenizer)
    sampler = trained.save_weights_and_get_sampling_client().result()
    # stop=[]: no stop token, so that every sequence has 5 tokens and 4 of them are scored
    # through the sampler's KV cache (the trained model may well end the sentence at once)
    params = types.SamplingParams(max_tokens=5, temperature=1.0, seed=11, stop=[])
    response = sampler.sample(types.ModelInput.from_ints(tokens), num_samples=2, sampling_params=params).result()
    for sequence in response.sequences:
        assert len(sequence.tokens) == 5, sequence
        full = tokens + list(sequence.tokens)
        targets = np.asarray(full[1:] + [0], dtype=np.int64)
        datum = types.Datum(model_input=types.ModelInput.from_ints(full),
                            loss_fn_inputs={"target_tokens": targets, "weights": np.zeros(len(full), np.float32)})
        rows = forward_logprobs(trained, [datum])[0][len(tokens) - 1 : len(full) - 1]
        torch.testing.assert_close(torch.tensor(sequence.logprobs), rows, **CLOSE)


# --------------------------------------------------------------- gradient values
def test_cross_entropy_gradients_match_a_plain_peft_model(service_client, tokenizer):
    """The accumulated gradients and loss:sum are those of a plain peft model with the same
    LoRA tensors, full [T, vocab] log-softmax and loss = sum(-logprobs * weights), one datum
    at a time: no gathered logprobs, no padding, no micro-batching. (A gradient scaled by a
    constant, or a weight on the wrong row, passes every comparison of the engine with
    itself; Adam even hides the scale from training curves.)"""
    client = new_client(service_client, rank=2, seed=2)
    data = [next_token_datum(tokenizer, s) for s in SHORT_SENTENCES[:3]]
    client.forward_backward(data, "cross_entropy").result()
    client.optim_step(types.AdamParams(learning_rate=1e-2)).result()  # lora_B != 0: every tensor has a gradient
    result = client.forward_backward(data, "cross_entropy").result()
    engine = client.accumulated_gradients()

    config = peft.LoraConfig(r=2, lora_alpha=32, lora_dropout=0.0, target_modules=sorted({lora_module(n) for n in engine}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = peft.get_peft_model(model_store.build_causal_lm(model_store.load_base_model(BASE_MODEL)), config)
    trainable = dict(reference.named_parameters())
    assert {name for name, p in trainable.items() if p.requires_grad} == set(engine)
    with torch.no_grad():
        for name, tensor in client.lora_state().items():
            trainable[name].copy_(tensor)
    loss = torch.zeros(())
    for datum in data:
        logits = reference(input_ids=torch.tensor([datum.model_input.to_ints()])).logits[0]
        logprobs = torch.log_softmax(logits, -1).gather(1, datum.loss_fn_inputs["target_tokens"].to_torch()[:, None])[:, 0]
        loss = loss + (-logprobs * datum.loss_fn_inputs["weights"].to_torch()).sum()
    loss.backward()
    assert result.metrics["loss:sum"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert_close_relative_to_scale(engine, {name: trainable[name].grad for name in engine}, rel=5e-3)


# ------------------------------------------------------------------ negative weights
def test_negative_weights_give_the_negated_gradient_and_lower_the_logprob(service_client, tokenizer):
    client = new_client(service_client, rank=2, seed=0)
    positive = [next_token_datum(tokenizer, s) for s in SHORT_SENTENCES[:2]]
    negative = [next_token_datum(tokenizer, s, scale=-1.0) for s in SHORT_SENTENCES[:2]]
    up = client.forward_backward(positive, "cross_entropy").result()
    up_grads = client.accumulated_gradients()
    clear_gradients(client)
    down = client.forward_backward(negative, "cross_entropy").result()
    down_grads = client.accumulated_gradients()
    assert global_norm(up_grads.values()) > 0
    assert down.metrics["loss:sum"] == pytest.approx(-up.metrics["loss:sum"], rel=1e-6)
    assert_same_tensors(down_grads, {k: -g for k, g in up_grads.items()}, atol=1e-7, rtol=1e-6)

    def weighted_logprob() -> float:
        return sum(float((lp * d.loss_fn_inputs["weights"].to_torch().abs()).sum())
                   for lp, d in zip(forward_logprobs(client, positive), positive))

    before = weighted_logprob()
    client.optim_step(types.AdamParams(learning_rate=1e-3)).result()  # the negative-weight gradient
    assert weighted_logprob() < before - 1e-3, "a negative weight must lower the token's logprob"


# --------------------------------------------------------------------- micro-batches
def per_datum_loss(logprobs, weights):
    """A server-side-handle loss with a ':mean' metric, whose micro-batch weighting matters."""
    loss = -(logprobs * weights).sum()
    return loss, {"custom/nll:sum": loss, "custom/nll:mean": loss}


def sum_of_squares(data, logprobs_list):
    """A custom loss that is not linear in the logprobs."""
    loss = sum((lp**2).sum() for lp in logprobs_list)
    return loss, {"squares:sum": float(loss.detach())}


@pytest.fixture(scope="module")
def mixed_data(tokenizer):
    """Lengths 6, 14, 10, 6: with a budget of 20 padded tokens the engine must split them
    into [6], [14], [10, 6] (three passes, one of them with padding)."""
    return [next_token_datum(tokenizer, SHORT_SENTENCES[i]) for i in (0, 3, 1, 2)]


def count_forward_passes(client) -> list[int]:
    """A list that grows by one per forward pass of ``client``'s model (a test spy)."""
    calls: list[int] = []
    client._model.decoder.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


@pytest.fixture(scope="module")
def one_and_many():
    """Two clients with the same seed, on services with a 20-token and the default budget,
    sharing a session's custom loss handle each."""
    clients = {}
    for name, budget in (("many", 20), ("one", 2048)):
        service = tinker_offline.ServiceClient(max_tokens_per_batch=budget, custom_loss_server_side=True)
        client = new_client(service, rank=2, seed=5)
        handle = service.create_custom_loss(per_datum_loss, {"logprobs": 1, "weights": 1}).result()
        clients[name] = (client, handle, count_forward_passes(client))
    return clients


@pytest.mark.parametrize("route", ["cross_entropy", "callable", "server-side handle"])
def test_micro_batches_change_no_result(one_and_many, mixed_data, route):
    """Logprobs, loss, metrics and accumulated gradients are the same whether the batch runs
    in one pass or in three micro-batches of mixed lengths."""
    results, gradients = {}, {}
    for name, (client, handle, calls) in one_and_many.items():
        clear_gradients(client)
        calls.clear()
        if route == "cross_entropy":
            results[name] = client.forward_backward(mixed_data, "cross_entropy").result()
        else:
            loss = sum_of_squares if route == "callable" else handle
            results[name] = client.forward_backward_custom(mixed_data, loss).result()
        passes = 2 if route == "callable" else 1  # the SDK's forward request, then its backward
        assert len(calls) == passes * (3 if name == "many" else 1), (name, len(calls))
        gradients[name] = client.accumulated_gradients()
    many, one = results["many"], results["one"]
    assert many.metrics.keys() == one.metrics.keys()
    for key in one.metrics:
        assert many.metrics[key] == pytest.approx(one.metrics[key], rel=1e-5), key
    for a, b in zip(many.loss_fn_outputs, one.loss_fn_outputs, strict=True):
        torch.testing.assert_close(a["logprobs"].to_torch(), b["logprobs"].to_torch(), **CLOSE)
    assert global_norm(gradients["one"].values()) > 0
    # Float32 noise between the two groupings reaches 7e-4 of a tensor's scale (30 layers of
    # sums in another order); a micro-batch dropped or counted twice is off by tens of percent.
    assert_close_relative_to_scale(gradients["many"], gradients["one"], rel=5e-3)


# ------------------------------------------------------------------------- forward
def test_forward_leaves_accumulated_gradients_untouched(service_client, tokenizer):
    client = new_client(service_client, rank=2, seed=0)
    data = [next_token_datum(tokenizer, s) for s in SHORT_SENTENCES[:2]]
    client.forward(data, "cross_entropy").result()
    assert all(g is None for g in client.accumulated_gradients().values()), "forward made gradients"
    client.forward_backward(data, "cross_entropy").result()
    accumulated = client.accumulated_gradients()
    client.forward(data, "cross_entropy").result()
    assert_same_tensors(client.accumulated_gradients(), accumulated)
