"""Code written for the SDK's other styles runs offline as it does on Tinker: the future from
create_lora_training_client used as the client, sampling clients from saved weights or a
base model, and top-k prompt logprobs that agree with the training client's forward."""

import warnings

import numpy as np
import pytest
import torch
from tinker import types

import tinker_offline

from emotion_task import ANSWER_PREFIX, SYSTEM_PROMPT, build_prompt_tokens
from engine_support import BASE_MODEL


@pytest.fixture(scope="module")
def service_client():
    return tinker_offline.ServiceClient()


def test_the_future_works_as_the_client_with_the_sdks_future_warning(service_client):
    future = service_client.create_lora_training_client(base_model=BASE_MODEL, rank=8, seed=0)
    with pytest.warns(FutureWarning, match="Using the future as the TrainingClient is deprecated; call .result"):
        tokenizer = future.get_tokenizer()
    tokens = build_prompt_tokens(tokenizer, SYSTEM_PROMPT, "The bus left without me.", ANSWER_PREFIX)
    datum = types.Datum(model_input=types.ModelInput.from_ints(tokens), loss_fn_inputs={
        "target_tokens": np.zeros(len(tokens), dtype=np.int64), "weights": np.zeros(len(tokens), dtype=np.float32)})
    with pytest.warns(FutureWarning):
        out = future.forward([datum], "cross_entropy").result()
    assert out.loss_fn_outputs[0]["logprobs"].shape == [len(tokens)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # .result() itself is the supported style: no warning
        assert future.result() is future.result()


def test_top_k_prompt_logprobs_match_the_training_clients_forward(service_client):
    client = service_client.create_lora_training_client(base_model=BASE_MODEL, rank=8, seed=0).result()
    tokens = build_prompt_tokens(client.get_tokenizer(), SYSTEM_PROMPT, "My sister drove four hours to help me move.", ANSWER_PREFIX)
    # The logprob of every prompt token, as the training client scores it (row t -> token t+1).
    datum = types.Datum(model_input=types.ModelInput.from_ints(tokens), loss_fn_inputs={
        "target_tokens": np.asarray(tokens[1:] + [0], dtype=np.int64), "weights": np.zeros(len(tokens), dtype=np.float32)})
    forward = client.forward([datum], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].to_torch()

    path = client.save_weights_for_sampler("surface-test").result().path
    sampler = service_client.create_sampling_client(model_path=path).result()
    response = sampler.sample(types.ModelInput.from_ints(tokens), num_samples=1,
                              sampling_params=types.SamplingParams(max_tokens=1, temperature=0.0),
                              include_prompt_logprobs=True, topk_prompt_logprobs=5).result()
    assert response.prompt_logprobs[0] is None and response.topk_prompt_logprobs[0] is None
    torch.testing.assert_close(torch.tensor(response.prompt_logprobs[1:]), forward[:-1], atol=1e-4, rtol=1e-4)
    for position, top in enumerate(response.topk_prompt_logprobs[1:], start=1):
        assert len(top) == 5
        values = [logprob for _, logprob in top]
        assert values == sorted(values, reverse=True)
        # The actual prompt token is never more likely than the top-1 entry.
        assert response.prompt_logprobs[position] <= values[0] + 1e-5
    assert sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result()[1:] == pytest.approx(
        response.prompt_logprobs[1:], abs=1e-5)


def test_sampling_client_on_the_base_model_equals_a_fresh_lora_client(service_client):
    client = service_client.create_lora_training_client(base_model=BASE_MODEL, rank=8, seed=0).result()
    tokens = build_prompt_tokens(client.get_tokenizer(), SYSTEM_PROMPT, "The milk had gone sour.", ANSWER_PREFIX)
    base = service_client.create_sampling_client(base_model=BASE_MODEL).result()
    fresh = client.save_weights_and_get_sampling_client().result()
    prompt = types.ModelInput.from_ints(tokens)
    assert base.compute_logprobs(prompt).result()[1:] == pytest.approx(fresh.compute_logprobs(prompt).result()[1:], abs=1e-5)


def test_unsupported_sampling_options_are_refused_by_name(service_client):
    sampler = service_client.create_sampling_client(base_model=BASE_MODEL).result()
    with pytest.raises(NotImplementedError, match="prompt_alt_tokens_k"):
        sampler.sample(types.ModelInput.from_ints([1, 2, 3]), num_samples=1,
                       sampling_params=types.SamplingParams(max_tokens=1), prompt_alt_tokens_k=2)


def test_unknown_sampler_path_says_how_to_get_one(service_client):
    with pytest.raises(ValueError, match="save_weights_for_sampler"):
        service_client.create_sampling_client(model_path="tinker://offline/sampler_weights/nope")
