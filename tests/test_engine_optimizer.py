"""optim_step is AdamW with every AdamParams field honoured, and each LoRA scope option
(train_mlp, train_attn, train_unembed) trains exactly the modules it names.

Each test is aimed at a bug a reviewer could plant: betas swapped, eps / weight decay /
clipping / a changed learning rate ignored, Adam state reset between steps, the lm_head
adapter dropped or left out of the forward pass, a scope flag wired to the wrong modules.
"""

from __future__ import annotations

import math

import pytest
import torch
from tinker import types

import tinker_offline
from tinker_offline import model_store

from token_set import forward_logprobs
from engine_support import (
    BASE_MODEL,
    SHORT_SENTENCES,
    assert_same_tensors,
    global_norm,
    lora_module,
    new_client,
    next_token_datum,
)

ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj"}
MLP = {"gate_proj", "up_proj", "down_proj"}


@pytest.fixture(scope="module")
def service_client():
    return tinker_offline.ServiceClient()


@pytest.fixture(scope="module")
def data():
    tokenizer = model_store.load_tokenizer(BASE_MODEL)
    return [next_token_datum(tokenizer, s) for s in SHORT_SENTENCES[:2]]


def reference_adamw_step(params, grads, state, step, adam: types.AdamParams) -> None:
    """torch.optim.AdamW's update, written out in float64, after global-norm clipping as
    torch.nn.utils.clip_grad_norm_ does it (scale max_norm / (norm + 1e-6), never above 1)."""
    norm = global_norm(grads.values())
    scale = min(1.0, adam.grad_clip_norm / (norm + 1e-6)) if adam.grad_clip_norm > 0 else 1.0
    for name, p in params.items():
        g = grads[name].double() * scale
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        m = adam.beta1 * m + (1 - adam.beta1) * g
        v = adam.beta2 * v + (1 - adam.beta2) * g * g
        state[name] = (m, v)
        decayed = p * (1 - adam.learning_rate * adam.weight_decay)
        denom = v.sqrt() / math.sqrt(1 - adam.beta2**step) + adam.eps
        params[name] = decayed - adam.learning_rate / (1 - adam.beta1**step) * m / denom


def test_optim_step_is_adamw_with_every_adam_param(service_client, data):
    """Three steps with non-default betas, eps, weight decay and clipping, and a learning
    rate that changes every step, against a hand-written AdamW fed the engine's own
    gradients. Step 1 alone cannot tell the betas apart (m / sqrt(v) = g / |g|), steps 2
    and 3 can; eps (1e-2) is about the size of a typical gradient entry, so it and the
    clipping scale both change the update; the lora_A tensors have zero gradient at step 1
    (lora_B starts at 0), so only weight decay moves them then."""
    client = new_client(service_client, rank=2, seed=1)
    params = {k: v.double() for k, v in client.lora_state().items()}
    state: dict = {}
    for step, (lr, clip_factor) in enumerate([(1e-2, 0.5), (5e-3, 0.25), (2e-2, 2.0)], start=1):
        client.forward_backward(data, "cross_entropy").result()
        grads = client.accumulated_gradients()
        norm = global_norm(grads.values())
        # clip_factor < 1 clips (to a different scale each step); 2.0 must leave the step alone.
        adam = types.AdamParams(learning_rate=lr, beta1=0.7, beta2=0.9, eps=1e-2, weight_decay=0.3,
                                grad_clip_norm=clip_factor * norm)
        result = client.optim_step(adam).result()
        assert result.metrics["grad_norm:mean"] == pytest.approx(norm, rel=1e-5), "norm before clipping"
        reference_adamw_step(params, grads, state, step, adam)
        got = {k: v.double() for k, v in client.lora_state().items()}
        assert_same_tensors(got, params, atol=1e-7, rtol=1e-5)
        assert all(g is None for g in client.accumulated_gradients().values())


@pytest.mark.parametrize(
    ("train_mlp", "train_attn", "train_unembed"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, True), (True, True, False)],
)
def test_each_scope_option_trains_exactly_its_modules(service_client, data, train_mlp, train_attn, train_unembed):
    """The LoRA tensors are those of the named modules, of the requested rank, in every
    layer; after one step every one of those modules has moved (so its adapter is in the
    forward pass) and nothing else exists to move."""
    rank = 2
    client = service_client.create_lora_training_client(
        base_model=BASE_MODEL, rank=rank, seed=0,
        train_mlp=train_mlp, train_attn=train_attn, train_unembed=train_unembed,
    ).result()
    expected = (MLP if train_mlp else set()) | (ATTENTION if train_attn else set()) | ({"lm_head"} if train_unembed else set())
    before = client.lora_state()
    layers = model_store.load_base_model(BASE_MODEL).config.num_hidden_layers
    per_module: dict[str, int] = {}
    for name, tensor in before.items():
        per_module[lora_module(name)] = per_module.get(lora_module(name), 0) + 1
        assert rank in (tensor.shape[0], tensor.shape[1]) and ("lora_A" in name) == (tensor.shape[0] == rank), name
    # A and B per adapted module: 2 per layer, 2 for lm_head.
    assert per_module == {m: 2 if m == "lm_head" else 2 * layers for m in expected}

    client.forward_backward(data, "cross_entropy").result()
    client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    after = client.lora_state()
    moved = {name.split(".lora_")[0] for name in before if not torch.equal(before[name], after[name])}
    adapted = {name.split(".lora_")[0] for name in before}
    assert moved == adapted, f"adapters that did not train: {sorted(adapted - moved)[:5]}"


def test_train_unembed_changes_the_model_and_only_through_lm_head(service_client, data):
    """Same seed, same data, one step, with and without train_unembed: the attention and
    MLP adapters come out identical (lm_head's adapter is created last), lm_head has an
    adapter only in the first, and the two models' logprobs differ."""
    clients = {}
    for unembed in (True, False):
        client = service_client.create_lora_training_client(
            base_model=BASE_MODEL, rank=2, seed=3, train_unembed=unembed).result()
        client.forward_backward(data, "cross_entropy").result()
        client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
        clients[unembed] = client
    with_unembed, without = clients[True].lora_state(), clients[False].lora_state()
    assert {lora_module(n) for n in with_unembed} - {lora_module(n) for n in without} == {"lm_head"}
    assert_same_tensors({k: v for k, v in with_unembed.items() if lora_module(k) != "lm_head"}, without)
    lp_with, lp_without = (forward_logprobs(clients[u], data) for u in (True, False))
    assert max(float((a - b).abs().max()) for a, b in zip(lp_with, lp_without)) > 1e-3
