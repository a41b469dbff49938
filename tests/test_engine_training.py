"""The three training routes agree with the SDK's algorithm, and training really works."""

import pytest
from tinker import TrainingClient as SdkTrainingClient
from tinker import types

import tinker_offline

from token_set import evaluate, kl_over_labels, set_kl
from engine_support import HELDOUT, TRAIN, assert_close_relative_to_scale, assert_same_tensors, new_client, task_datum

ADAM = types.AdamParams(learning_rate=1e-3)


@pytest.fixture(scope="module")
def service_client():
    return tinker_offline.ServiceClient()


@pytest.fixture(scope="module")
def data(service_client):
    tokenizer = new_client(service_client).get_tokenizer()
    return [task_datum(tokenizer, example) for example in TRAIN[:3]]


def test_callable_update_equals_cross_entropy_with_the_sdks_weights(service_client, data):
    custom = new_client(service_client)
    result = custom.forward_backward_custom(data, kl_over_labels).result()
    custom.optim_step(ADAM).result()

    # The same update, built by hand from the SDK's own client-side code.
    manual = new_client(service_client)
    forward_data = SdkTrainingClient._get_custom_loss_forward_data(None, data, "cross_entropy")
    forward_result = manual.forward(forward_data, "cross_entropy").result()
    sdk_step = SdkTrainingClient._compute_custom_loss(data, kl_over_labels, forward_result)
    manual.forward_backward(sdk_step.data, "cross_entropy").result()
    manual.optim_step(ADAM).result()

    assert result.metrics["loss:sum"] == pytest.approx(sdk_step.loss_sum, rel=1e-6)
    assert "surrogate_loss:sum" in result.metrics
    assert_same_tensors(custom.lora_state(), manual.lora_state(), atol=1e-7, rtol=1e-5)
    # The weights the SDK sends are non-zero only on the scored row.
    weights = sdk_step.data[0].loss_fn_inputs["weights"].to_torch()
    assert weights[:-1].abs().sum() == 0 and weights[-1].abs().sum() > 0


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side (SDK default)", "server-side"])
def test_handle_and_equivalent_callable_give_the_same_update(server_side):
    """Both handle modes train like the callable; only a server-side handle has a loss_id."""
    service_client = tinker_offline.ServiceClient(custom_loss_server_side=server_side)
    tokenizer = new_client(service_client).get_tokenizer()
    data = [task_datum(tokenizer, example) for example in TRAIN[:3]]
    handle = service_client.create_custom_loss(set_kl, {"logprobs": 2, "target_distribution": 2}).result()
    assert (handle.loss_id is not None) == server_side
    by_handle = new_client(service_client)
    by_callable = new_client(service_client)
    handle_result = by_handle.forward_backward_custom(data, handle).result()
    callable_result = by_callable.forward_backward_custom(data, kl_over_labels).result()
    # Client-side, the handle runs the callable's two passes: a surrogate loss is reported.
    assert ("surrogate_loss:sum" in handle_result.metrics) == (not server_side)
    assert handle_result.metrics["loss:sum"] == pytest.approx(callable_result.metrics["loss:sum"], rel=1e-5)
    assert handle_result.metrics["custom/kl:sum"] == pytest.approx(callable_result.metrics["kl:sum"], rel=1e-5)
    assert_same_tensors(by_handle.accumulated_gradients(), by_callable.accumulated_gradients(), atol=1e-6, rtol=1e-4)
    by_handle.optim_step(ADAM).result()
    by_callable.optim_step(ADAM).result()
    assert_same_tensors(by_handle.lora_state(), by_callable.lora_state(), atol=1e-6, rtol=1e-4)


def test_gradients_accumulate_until_optim_step(service_client, data):
    client = new_client(service_client)
    client.forward_backward_custom(data[:1], kl_over_labels).result()
    client.forward_backward_custom(data[1:], kl_over_labels).result()
    split = client.accumulated_gradients()
    together = new_client(service_client)
    together.forward_backward_custom(data, kl_over_labels).result()
    # One request shares its prompts' prefix and two do not: float32 sums in another order,
    # about 1e-5 of a tensor's scale. A call that dropped the earlier gradients lacks the
    # first datum's whole share.
    assert_close_relative_to_scale(split, together.accumulated_gradients(), rel=1e-3)
    client.optim_step(ADAM).result()
    assert all(g is None for g in client.accumulated_gradients().values())


def test_same_seed_same_training(service_client, data):
    runs = []
    for _ in range(2):
        client = new_client(service_client, seed=7)
        client.forward_backward_custom(data, kl_over_labels).result()
        client.optim_step(ADAM).result()
        runs.append(client.lora_state())
    assert_same_tensors(runs[0], runs[1])


def test_kl_over_the_label_set_falls_by_90_percent_and_improves_held_out(service_client):
    client = new_client(service_client, rank=16, seed=0)
    tokenizer = client.get_tokenizer()
    train = [task_datum(tokenizer, example) for example in TRAIN]
    heldout = [task_datum(tokenizer, example) for example in HELDOUT]
    (train_before, _), (heldout_before, _) = evaluate(client, train), evaluate(client, heldout)
    for _ in range(20):
        client.forward_backward_custom(train, kl_over_labels).result()
        client.optim_step(ADAM).result()
    (train_after, _), (heldout_after, _) = evaluate(client, train), evaluate(client, heldout)
    print(f"train KL {train_before:.3f} -> {train_after:.3f}; held-out {heldout_before:.3f} -> {heldout_after:.3f}")
    assert train_after <= 0.1 * train_before
    assert heldout_after < heldout_before
