"""Saving and loading training state, as tinker 0.38's calls do it (Tinker's "Manage
Checkpoints" docs page; the SDK's ``TrainingClient.save_state``, ``load_state*`` and
``ServiceClient.create_training_client_from_state[_with_optimizer]``).

A saved state holds the LoRA weights, the Adam state and the base model's name; loading
with the optimizer continues training exactly, loading without it starts Adam afresh; a
missing path, another base model or a sampler path is refused by name; an interrupted save
leaves the previous state readable; a poisoned client stays poisoned while a client made
from its last state trains.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from engine_support import TRAIN, assert_same_tensors, new_client, task_datum
from tinker import RequestFailedError, types
from tinker.lib.public_interfaces.service_client import ServiceClient as SdkServiceClient
from tinker.lib.public_interfaces.training_client import TrainingClient as SdkTrainingClient

import tinker_offline
from token_set import kl_over_labels
from tinker_offline import checkpoints

ADAM = types.AdamParams(learning_rate=1e-3)


@pytest.fixture(scope="module")
def service_client(tmp_path_factory):
    return tinker_offline.ServiceClient(state_dir=tmp_path_factory.mktemp("states"))


@pytest.fixture(scope="module")
def data(service_client):
    tokenizer = new_client(service_client).get_tokenizer()
    return [task_datum(tokenizer, example) for example in TRAIN[:2]]


def train(client, data, steps: int) -> None:
    for _ in range(steps):
        client.forward_backward_custom(data, kl_over_labels).result()
        client.optim_step(ADAM).result()


@pytest.fixture(scope="module")
def saved(service_client, data):
    """A client trained two steps, and the path of its state after them."""
    client = new_client(service_client)
    train(client, data, 2)
    return client, client.save_state("after-two-steps").result().path


def test_save_state_returns_the_sdks_path_and_response(saved):
    client, path = saved
    assert path == f"tinker://{client.run_id}/weights/after-two-steps"
    assert types.ParsedCheckpointTinkerPath.from_tinker_path(path).checkpoint_type == "training"


def test_a_client_from_the_state_with_optimizer_has_the_weights_and_the_adam_state(service_client, saved):
    client, path = saved
    loaded = service_client.create_training_client_from_state_with_optimizer(path).result()
    assert loaded.base_model == client.base_model
    assert_same_tensors(loaded.lora_state(), client.lora_state())
    before, after = client.optimizer_state(), loaded.optimizer_state()
    assert before["state"] and set(before["state"]) == set(after["state"])
    for index, entry in before["state"].items():
        assert_same_tensors(entry, after["state"][index])
    assert all(g is None for g in loaded.accumulated_gradients().values())


def test_the_next_step_after_loading_with_optimizer_equals_the_uninterrupted_ones(service_client, data):
    twin = new_client(service_client)
    train(twin, data, 2)
    path = twin.save_state("twin").result().path
    resumed = service_client.create_training_client_from_state_with_optimizer(path).result()
    train(twin, data, 1)
    train(resumed, data, 1)
    assert_same_tensors(resumed.lora_state(), twin.lora_state())
    assert_same_tensors(resumed.optimizer_state()["state"][0], twin.optimizer_state()["state"][0])


def test_a_client_from_the_state_without_optimizer_starts_adam_afresh(service_client, data, saved):
    client, path = saved
    fresh_adam = service_client.create_training_client_from_state(path).result()
    assert_same_tensors(fresh_adam.lora_state(), client.lora_state())
    assert fresh_adam.optimizer_state() == {}
    train(fresh_adam, data, 1)
    assert int(fresh_adam.optimizer_state()["state"][0]["step"]) == 1  # Adam's first step, not its third


def test_load_state_and_load_state_with_optimizer_warn_as_the_sdk_does(service_client, data, saved):
    client, path = saved
    other = new_client(service_client, seed=1)
    train(other, data, 1)  # an Adam state of its own, which load_state must drop
    with pytest.warns(FutureWarning) as caught:
        other.load_state(path).result()
    assert str(caught[0].message) == SdkTrainingClient.load_state.__deprecated__
    assert_same_tensors(other.lora_state(), client.lora_state())
    assert other.optimizer_state() == {}
    with pytest.warns(FutureWarning):
        response = other.load_state_with_optimizer(path).result()
    assert isinstance(response, types.LoadWeightsResponse) and response.path == path
    assert int(other.optimizer_state()["state"][0]["step"]) == 2


def test_the_async_forms_are_deprecated_with_the_sdks_texts(service_client, saved):
    import asyncio

    _, path = saved
    with pytest.warns(FutureWarning) as caught:
        asyncio.run(service_client.create_training_client_from_state_async(path))
    assert str(caught[0].message) == SdkServiceClient.create_training_client_from_state_async.__deprecated__


def test_a_missing_path_is_refused_naming_it(service_client):
    missing = "tinker://no-such-run/weights/nothing"
    with pytest.raises(RequestFailedError, match="no training state at 'tinker://no-such-run/weights/nothing'"):
        service_client.create_training_client_from_state(missing).result()
    with pytest.raises(RequestFailedError, match="is not a training state path"):
        service_client.create_training_client_from_state("/tmp/some/file.pt").result()
    with pytest.raises(RequestFailedError, match="holds sampler weights"):
        service_client.create_training_client_from_state("tinker://run/sampler_weights/x").result()


def test_another_base_model_is_refused_naming_the_path(service_client, saved):
    _, path = saved
    with pytest.raises(RequestFailedError, match=f"the state at '{path}' was saved from base model"):
        service_client.create_training_client_from_state(path, base_model="Qwen/Qwen3-8B").result()


def test_a_client_of_another_rank_refuses_the_state_and_keeps_its_weights(service_client, saved):
    _, path = saved
    other = new_client(service_client, rank=4)
    weights = other.lora_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(RequestFailedError, match="has LoRA rank 8"):
            other.load_state(path).result()
    assert_same_tensors(other.lora_state(), weights)


def test_saving_over_a_state_needs_overwrite(service_client, data):
    client = new_client(service_client)
    path = client.save_state("same-name").result().path
    with pytest.raises(RequestFailedError, match="pass overwrite=True"):
        client.save_state("same-name").result()
    train(client, data, 1)
    assert client.save_state("same-name", overwrite=True).result().path == path
    reloaded = service_client.create_training_client_from_state(path).result()
    assert_same_tensors(reloaded.lora_state(), client.lora_state())
    with pytest.raises(ValueError, match="without '/'"):
        client.save_state("a/b")


def test_an_interrupted_save_leaves_the_previous_state_readable(service_client, data, monkeypatch):
    client = new_client(service_client)
    train(client, data, 1)
    path = client.save_state("interrupted").result().path
    kept = client.lora_state()
    train(client, data, 1)

    def save_half_then_fail(obj, target):
        with open(target, "wb") as partial:
            partial.write(b"half a file")
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(checkpoints.torch, "save", save_half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.write(service_client.state_root, path, client._export_state(), overwrite=True)
    monkeypatch.undo()
    reloaded = service_client.create_training_client_from_state(path).result()
    assert_same_tensors(reloaded.lora_state(), kept)
    assert not [p for p in checkpoints.file_for(service_client.state_root, path).parent.iterdir() if p.suffix == ".tmp"]


def test_a_poisoned_client_stays_poisoned_while_a_client_from_its_state_trains(service_client, data):
    client = new_client(service_client)
    train(client, data, 1)
    path = client.save_state("before-poison").result().path

    def broken_loss(data, logprobs_list):
        raise ZeroDivisionError("a bug in the loss")

    with pytest.raises(ZeroDivisionError):
        client.forward_backward_custom(data, broken_loss).result()
    for call in (lambda: client.optim_step(ADAM), lambda: client.save_state("after-poison"),
                 lambda: client.forward_backward_custom(data, kl_over_labels)):
        with pytest.raises(RuntimeError, match="this TrainingClient is poisoned"):
            call().result()

    recovered = service_client.create_training_client_from_state_with_optimizer(path).result()
    loss_before = recovered.forward_backward_custom(data, kl_over_labels).result().metrics["loss:sum"]
    recovered.optim_step(ADAM).result()
    loss_after = recovered.forward_backward_custom(data, kl_over_labels).result().metrics["loss:sum"]
    assert loss_after < loss_before
    with pytest.raises(RuntimeError, match="poisoned"):
        client.forward(data, "cross_entropy").result()
    assert torch.isfinite(torch.tensor(loss_after))
