"""Every option of the SDK's public signatures is either honoured or refused by name.

An option that would change what Tinker computes and that the engine does not implement
raises, naming it; options that only file things on Tinker's server (metadata, TTLs, retry
settings) are accepted and documented as having no effect offline. Public methods carry
return annotations and docstrings.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from tinker import types
from tinker.lib.public_interfaces.sampling_client import SamplingClient as SdkSamplingClient
from tinker.lib.public_interfaces.service_client import ServiceClient as SdkServiceClient
from tinker.lib.public_interfaces.training_client import TrainingClient as SdkTrainingClient

import tinker_offline
from tinker_offline import model_store

from token_set import kl_over_labels
from engine_support import BASE_MODEL, SHORT_SENTENCES, next_token_datum

CLASSES = [
    (tinker_offline.ServiceClient, SdkServiceClient),
    (tinker_offline.TrainingClient, SdkTrainingClient),
    (tinker_offline.SamplingClient, SdkSamplingClient),
]


@pytest.fixture(scope="module")
def service_client():
    return tinker_offline.ServiceClient({"purpose": "tests"}, "project", display_name="options")


@pytest.fixture(scope="module")
def client(service_client):
    return service_client.create_lora_training_client(
        BASE_MODEL, rank=2, seed=0, user_metadata={"run": "options"}, optimizer=types.AdamOptimizerConfig()
    ).result()


@pytest.fixture(scope="module")
def prompt():
    tokens = model_store.load_tokenizer(BASE_MODEL).encode(SHORT_SENTENCES[1], add_special_tokens=False)
    return types.ModelInput.from_ints(tokens)


# ------------------------------------------------------------------- signatures
def public_methods(cls):
    return {name: fn for name, fn in vars(cls).items() if not name.startswith("_") and inspect.isfunction(fn)}


@pytest.mark.parametrize("offline, sdk", CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_every_sdk_parameter_of_a_method_exists_offline(offline, sdk):
    """Each method the engine shares with the SDK takes all of the SDK's parameters (or
    forwards ``*args, **kwargs`` to one that does), so none is a surprise TypeError."""
    for name, fn in public_methods(offline).items():
        if not hasattr(sdk, name):
            continue
        params = inspect.signature(fn).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        missing = set(inspect.signature(getattr(sdk, name)).parameters) - set(params)
        assert not missing, f"{offline.__name__}.{name} lacks the SDK's {sorted(missing)}"


@pytest.mark.parametrize("offline, sdk", CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_public_methods_have_return_annotations_and_docstrings(offline, sdk):
    for name, fn in public_methods(offline).items():
        assert inspect.signature(fn).return_annotation is not inspect.Signature.empty, f"{offline.__name__}.{name}"
        if not name.endswith("_async"):  # the SDK's deprecated twins carry its deprecation message
            assert fn.__doc__ and fn.__doc__.strip(), f"{offline.__name__}.{name} has no docstring"


# -------------------------------------------------------------- ServiceClient
@pytest.mark.parametrize("option", ["api_key", "base_url", "default_headers_overrides"])
def test_connection_options_are_refused_by_name(option):
    with pytest.raises(ValueError, match=f"connects to no server, so it takes no {option}; .*tinker.ServiceClient"):
        tinker_offline.ServiceClient(**{option: {"x": "y"} if option == "default_headers_overrides" else "x"})


def test_unknown_service_options_are_a_type_error_naming_them():
    with pytest.raises(TypeError, match="custom_loss_serverside"):
        tinker_offline.ServiceClient(custom_loss_serverside=True)  # a typo is not silently ignored


def test_session_labels_and_user_metadata_and_adam_optimizer_are_accepted(client):
    assert isinstance(client, tinker_offline.TrainingClient)


def test_an_optimizer_other_than_adamw_is_refused(service_client):
    with pytest.raises(NotImplementedError, match=r"optimizer=DimuonOptimizerConfig.*AdamW is the only optimizer"):
        service_client.create_lora_training_client(BASE_MODEL, rank=2, optimizer=types.DimuonOptimizerConfig())


def test_sampler_options(service_client, client):
    with pytest.raises(NotImplementedError, match="record_stability_info=True"):
        service_client.create_sampling_client(base_model=BASE_MODEL, record_stability_info=True)
    with pytest.raises(NotImplementedError, match="record_stability_info=True"):
        client.save_weights_and_get_sampling_client(record_stability_info=True)
    with pytest.raises(NotImplementedError, match="kind='inflight'"):
        client.save_weights_and_get_sampling_client(kind="inflight")
    with pytest.warns(DeprecationWarning, match="'name' parameter"):
        client.save_weights_and_get_sampling_client(name="ignored").result()
    path = client.save_weights_for_sampler("options", ttl_seconds=3600, user_metadata={"k": "v"}).result().path
    assert isinstance(client.create_sampling_client(path, retry_config=None).result(), tinker_offline.SamplingClient)


# ------------------------------------------------------------- TrainingClient
def test_loss_type_input_behaves_as_in_the_sdk(client, prompt):
    datum = next_token_datum(model_store.load_tokenizer(BASE_MODEL), SHORT_SENTENCES[0])
    with pytest.warns(DeprecationWarning, match="loss_type_input"):
        client.forward_backward_custom([datum], lambda d, lps: (sum(lp.sum() for lp in lps), {}),
                                       loss_type_input="logprobs").result()
    with pytest.raises(ValueError), pytest.warns(DeprecationWarning):
        client.forward_backward_custom([datum], kl_over_labels, loss_type_input="logits")


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side handle", "server-side handle"])
def test_empty_data_with_a_handle_is_rejected_at_call_time(server_side):
    service_client = tinker_offline.ServiceClient(custom_loss_server_side=server_side)
    handle = service_client.create_custom_loss(
        lambda logprobs, weights: ((logprobs * weights).sum(), {}), {"logprobs": 1, "weights": 1}).result()
    client = service_client.create_lora_training_client(BASE_MODEL, rank=2, seed=0).result()
    with pytest.raises(ValueError, match="No data provided"):
        client.forward_backward_custom([], handle)


# ------------------------------------------------------------- SamplingClient
@pytest.mark.parametrize(
    "option, value",
    [("topk_sample_logprobs", 2), ("prompt_alt_tokens_k", 2),
     ("target_prompt_logprobs", types.TensorData.from_numpy(np.zeros((3, 1), dtype=np.int64)))],
)
def test_unimplemented_sample_options_are_refused_by_name(client, prompt, option, value):
    sampler = client.save_weights_and_get_sampling_client().result()
    with pytest.raises(NotImplementedError, match=f"tinker_offline does not implement {option}="):
        sampler.sample(prompt, 1, types.SamplingParams(max_tokens=1), **{option: value})


def test_prompt_logprobs_last_n_in_sample_and_compute_logprobs(client, prompt):
    sampler = client.save_weights_and_get_sampling_client().result()
    params = types.SamplingParams(max_tokens=1, temperature=0.0)
    full = sampler.sample(prompt, 1, params, include_prompt_logprobs=True, topk_prompt_logprobs=3).result()
    last = sampler.sample(prompt, 1, params, include_prompt_logprobs=True, topk_prompt_logprobs=3,
                          prompt_logprobs_last_n=2).result()
    n = prompt.length
    assert last.prompt_logprobs == [None] * (n - 2) + full.prompt_logprobs[-2:]
    assert last.topk_prompt_logprobs == [None] * (n - 2) + full.topk_prompt_logprobs[-2:]
    assert sampler.compute_logprobs(prompt, prompt_logprobs_last_n=2).result() == last.prompt_logprobs
    with pytest.raises(ValueError, match="set include_prompt_logprobs"):  # the SDK's own check
        sampler.sample(prompt, 1, params, prompt_logprobs_last_n=2)
    with pytest.raises(ValueError, match=f"between 1 and {n - 1}"):
        sampler.compute_logprobs(prompt, prompt_logprobs_last_n=n).result()
