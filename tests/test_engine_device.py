"""Where the engine computes: cuda when torch sees a GPU, else the CPU, overridable with
$TINKER_OFFLINE_DEVICE; a device torch cannot use is refused with the variable's name."""

import pytest
import torch

from tinker_offline import model_store

from engine_support import client  # noqa: F401 (fixture)


def test_default_device_is_cuda_when_available_else_cpu(monkeypatch):
    monkeypatch.delenv(model_store.DEVICE_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model_store.compute_device().type == expected


def test_the_variable_chooses_the_device(monkeypatch):
    monkeypatch.setenv(model_store.DEVICE_ENV, "cpu")
    assert model_store.compute_device() == torch.device("cpu")


@pytest.mark.parametrize("value, message", [
    ("gpu0", r"TINKER_OFFLINE_DEVICE='gpu0' is not a torch device; use cpu or cuda"),
    ("cuda", r"TINKER_OFFLINE_DEVICE='cuda', but torch sees no CUDA device; unset it or use cpu"),
])
def test_a_device_torch_cannot_use_is_refused(monkeypatch, value, message):
    if value == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv(model_store.DEVICE_ENV, value)
    with pytest.raises(ValueError, match=message):
        model_store.compute_device()


def test_the_clients_model_is_on_the_compute_device(client):
    device = model_store.compute_device()
    assert client._model.device == device
    assert all(p.device == device for p in client._model.peft_model.parameters())
    assert all(b.device == device for b in client._model.peft_model.buffers())
