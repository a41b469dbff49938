"""Bad requests fail with Tinker's wording and leave weights, gradients and Adam state alone."""

import re

import numpy as np
import pytest
import torch
from tinker import RequestFailedError, types

from token_set import kl_over_labels, set_kl
from engine_support import TRAIN, assert_same_tensors, new_client, task_datum


POISONED = "A previous request failed; this TrainingClient is poisoned and cannot accept further requests."


def sdk_request_failed(server_message: str) -> str:
    """The message of the SDK's RequestFailedError for a server rejection (api_future_impl.py)."""
    return (
        "Request failed: " + re.escape(server_message)
        + r" for self\.request_id='offline-\d+' and expected type self\.model_cls=<class '[\w.]*ForwardBackwardOutput'>"
    )


def make_primed():
    """A client that has taken one step and holds accumulated gradients, so every kind of
    state is non-trivial when a bad request arrives."""
    service_client = __import__("tinker_offline").ServiceClient()
    client = new_client(service_client)
    tokenizer = client.get_tokenizer()
    data = [task_datum(tokenizer, example) for example in TRAIN[:2]]
    client.forward_backward_custom(data, kl_over_labels).result()
    client.optim_step(types.AdamParams(learning_rate=1e-3)).result()
    client.forward_backward_custom(data, kl_over_labels).result()
    return service_client, client, tokenizer, data


@pytest.fixture(scope="module")
def primed():
    """Shared by the tests whose bad requests do not poison the client."""
    return make_primed()


@pytest.fixture
def poisonable():
    """A client of its own, for a test whose failed custom loss poisons it."""
    return make_primed()


def assert_poisoned(client, data, cause_type):
    """Every later request fails with the SDK's RuntimeError, chained to the first failure."""
    requests = [
        lambda: client.forward(data, "cross_entropy"),
        lambda: client.forward_backward(data, "cross_entropy"),
        lambda: client.forward_backward_custom(data, kl_over_labels),
        lambda: client.optim_step(types.AdamParams(learning_rate=1e-3)),
    ]
    for request in requests:
        with pytest.raises(RuntimeError, match=re.escape(POISONED)) as raised:
            request().result()
        assert isinstance(raised.value.__cause__, cause_type)


def snapshot(client):
    return client.lora_state(), client.accumulated_gradients(), client.optimizer_state()


def assert_unchanged(client, before):
    weights, grads, adam = before
    assert_same_tensors(client.lora_state(), weights)
    assert_same_tensors(client.accumulated_gradients(), grads)
    after = client.optimizer_state()
    assert after["param_groups"] == adam["param_groups"]
    for key in adam["state"]:
        assert_same_tensors(after["state"][key], adam["state"][key])


def datum_with(tokens, **loss_fn_inputs):
    return types.Datum(model_input=types.ModelInput.from_ints(tokens), loss_fn_inputs=loss_fn_inputs)


def test_703_target_tokens_of_label_length_is_rejected_with_tinkers_message(primed):
    _, client, tokenizer, data = primed
    tokens = data[0].model_input.to_ints()
    bad = datum_with(tokens, target_tokens=np.arange(21, dtype=np.int64))
    before = snapshot(client)
    with pytest.raises(RequestFailedError) as raised:
        client.forward_backward([bad], "cross_entropy").result()
    assert re.fullmatch(
        sdk_request_failed(
            "input sequence and target_tokens at index 0 must agree on sequence length: "
            f"target_tokens.shape[0]=21 token_count={len(tokens)}"
        ),
        str(raised.value),
    ), str(raised.value)
    assert_unchanged(client, before)
    # A rejected plain request does not poison the client (only custom-loss failures do).
    client.forward(data, "cross_entropy").result()


def test_missing_weights_are_rejected_not_defaulted(primed):
    _, client, _, data = primed
    tokens = data[0].model_input.to_ints()
    no_weights = datum_with(tokens, target_tokens=np.zeros(len(tokens), dtype=np.int64))
    before = snapshot(client)
    for call in (client.forward, client.forward_backward):
        with pytest.raises(RequestFailedError, match=r"datum at index 0 has no loss_fn_inputs\['weights'\]; cross_entropy needs weights"):
            call([no_weights], "cross_entropy").result()
    assert_unchanged(client, before)


def test_message_names_the_failing_datum_index(primed):
    _, client, _, data = primed
    tokens = data[1].model_input.to_ints()
    bad = datum_with(tokens, target_tokens=np.zeros(len(tokens) - 1, dtype=np.int64))
    with pytest.raises(Exception, match=r"at index 1 must agree on sequence length: target_tokens.shape\[0\]=%d token_count=%d" % (len(tokens) - 1, len(tokens))):
        client.forward([data[0], bad], "cross_entropy").result()


BAD_REQUESTS = {
    "weights shape differs": (
        lambda n: {"target_tokens": np.zeros((n, 3), dtype=np.int64), "weights": np.zeros(n, dtype=np.float32)},
        r"weights and target_tokens at index 0 must have the same shape: weights.shape=\[\d+\] target_tokens.shape=\[\d+, 3\]",
    ),
    "target id outside the vocabulary": (
        lambda n: {"target_tokens": np.full(n, 49152, dtype=np.int64)},
        r"target_tokens at index 0 has token ids outside the vocabulary \[0, 49152\): \[49152",
    ),
    "negative target id": (
        lambda n: {"target_tokens": np.full(n, -1, dtype=np.int64)},
        r"outside the vocabulary",
    ),
    "missing target_tokens": (
        lambda n: {"weights": np.ones(n, dtype=np.float32)},
        r"has no loss_fn_inputs\['target_tokens'\]",
    ),
    "rank-3 target_tokens": (
        lambda n: {"target_tokens": np.zeros((n, 2, 2), dtype=np.int64)},
        r"must have shape \[T\] or \[T, K\]",
    ),
    "non-finite weights": (
        lambda n: {"target_tokens": np.zeros(n, dtype=np.int64), "weights": np.full(n, np.nan, dtype=np.float32)},
        r"weights at index 0 contain NaN",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_cross_entropy_inputs_are_rejected_and_change_nothing(primed, case):
    _, client, _, data = primed
    tokens = data[0].model_input.to_ints()
    make_inputs, message = BAD_REQUESTS[case]
    before = snapshot(client)
    with pytest.raises(Exception, match=message):
        client.forward_backward([datum_with(tokens, **make_inputs(len(tokens)))], "cross_entropy").result()
    assert_unchanged(client, before)


def test_input_token_outside_vocabulary(primed):
    _, client, _, _ = primed
    before = snapshot(client)
    with pytest.raises(Exception, match=r"model_input at index 0 has token ids outside the vocabulary \[0, 49152\): \[60000\]"):
        client.forward_backward([datum_with([1, 60000], target_tokens=[1, 2])], "cross_entropy").result()
    assert_unchanged(client, before)


def test_empty_data_is_rejected_at_call_time(primed):
    _, client, _, _ = primed
    for call in (
        lambda: client.forward([], "cross_entropy"),
        lambda: client.forward_backward([], "cross_entropy"),
        lambda: client.forward_backward_custom([], kl_over_labels),
    ):
        with pytest.raises(ValueError, match="No data provided"):
            call()


def test_unknown_loss_fn(primed):
    _, client, _, data = primed
    before = snapshot(client)
    with pytest.raises(Exception, match=r"loss_fn 'importance_samplin' is not supported offline"):
        client.forward_backward(data, "importance_samplin").result()
    assert_unchanged(client, before)


def test_custom_loss_without_target_tokens_fails_at_call_time_like_the_sdk(primed):
    _, client, _, data = primed
    bad = types.Datum(model_input=data[0].model_input, loss_fn_inputs={"target_distribution": np.ones(6, dtype=np.float32) / 6})
    with pytest.raises(ValueError, match="target_tokens must be provided when using cross_entropy"):
        client.forward_backward_custom([bad], kl_over_labels)


@pytest.mark.parametrize(
    "loss_fn, message",
    [
        (lambda data, lps: (torch.stack([lp[-1].sum() for lp in lps]), {}), r"scalar|grad can be implicitly created only for scalar outputs|must return"),
        (lambda data, lps: (sum(lp[-1].sum() for lp in lps) * float("nan"), {}), r"not finite"),
        (lambda data, lps: (sum(torch.log(lp[-1].sum() * 0) for lp in lps), {}), r"not finite"),
    ],
    ids=["non-scalar", "nan", "log-zero"],
)
def test_custom_loss_that_is_not_a_finite_scalar_changes_nothing_and_poisons(poisonable, loss_fn, message):
    _, client, _, data = poisonable
    before = snapshot(client)
    with pytest.raises(Exception, match=message) as raised:
        client.forward_backward_custom(data, loss_fn).result()
    assert_unchanged(client, before)
    assert_poisoned(client, data, type(raised.value))


def test_custom_loss_that_raises_propagates_its_error_changes_nothing_and_poisons(poisonable):
    _, client, _, data = poisonable

    def broken(data, logprobs_list):
        raise KeyError("target_distributon")

    before = snapshot(client)
    with pytest.raises(KeyError, match="target_distributon"):
        client.forward_backward_custom(data, broken).result()
    assert_unchanged(client, before)
    assert_poisoned(client, data, KeyError)


def test_custom_loss_rejected_by_the_server_poisons(poisonable):
    _, client, _, data = poisonable
    tokens = data[0].model_input.to_ints()
    bad = datum_with(tokens, target_tokens=np.zeros(len(tokens) - 1, dtype=np.int64),
                     target_distribution=np.ones(6, dtype=np.float32) / 6)
    with pytest.raises(RequestFailedError, match="must agree on sequence length"):
        client.forward_backward_custom([bad], kl_over_labels).result()
    assert_poisoned(client, data, RequestFailedError)


def test_call_time_errors_do_not_poison(primed):
    """The SDK raises these before reserving any request, so the client goes on."""
    _, client, _, data = primed
    bad = types.Datum(model_input=data[0].model_input, loss_fn_inputs={"target_distribution": np.ones(6, dtype=np.float32) / 6})
    with pytest.raises(ValueError):
        client.forward_backward_custom([bad], kl_over_labels)
    client.forward(data, "cross_entropy").result()


def test_handle_with_wrong_declared_rank_is_rejected(primed):
    service_client, client, _, data = primed
    handle = service_client.create_custom_loss(set_kl, {"logprobs": 1, "target_distribution": 2}).result()
    before = snapshot(client)
    with pytest.raises(ValueError, match=r"datum\[0\] loss_fn_inputs\['target_tokens'\] has rank 2, but loss 'set_kl' declared logprobs with rank 1"):
        client.forward_backward_custom(data, handle)
    assert_unchanged(client, before)


def test_handle_input_must_have_the_shape_its_rank_means(primed):
    """Rank 1 is [T] and rank 2 is [T, K]; a [K] vector declared rank 1 is refused."""
    service_client, client, _, data = primed

    def per_label(logprobs, target_distribution):
        log_q = logprobs[-1] - torch.logsumexp(logprobs[-1], dim=-1)
        return -(target_distribution * log_q).sum(), {}

    handle = service_client.create_custom_loss(per_label, {"logprobs": 2, "target_distribution": 1}).result()
    as_vector = [types.Datum(model_input=d.model_input, loss_fn_inputs={
        **d.loss_fn_inputs, "target_distribution": d.loss_fn_inputs["target_distribution"].to_numpy()[-1]}) for d in data]
    K = data[0].loss_fn_inputs["target_tokens"].shape[1]  # the number of labels
    wrong_shape = rf"has shape \[{K}\], but rank 1 means \[T\] with T = \d+"
    before = snapshot(client)
    with pytest.raises(ValueError, match=wrong_shape):
        client.forward_backward_custom(as_vector, handle)
    assert_unchanged(client, before)
    # The same [K] vector as 1-D data without a shape (the SDK's rank-1 form) is refused too.
    shapeless = [types.Datum(model_input=d.model_input, loss_fn_inputs={
        **d.loss_fn_inputs, "target_distribution": types.TensorData(
            data=d.loss_fn_inputs["target_distribution"].to_numpy()[-1].tolist(), dtype="float32")}) for d in data]
    assert shapeless[0].loss_fn_inputs["target_distribution"].shape is None
    with pytest.raises(ValueError, match=wrong_shape):
        client.forward_backward_custom(shapeless, handle)
    assert_unchanged(client, before)


def test_handle_missing_an_input_is_rejected(primed):
    service_client, client, _, data = primed
    handle = service_client.create_custom_loss(set_kl, {"logprobs": 2, "target_distribution": 2}).result()
    bare = [types.Datum(model_input=d.model_input, loss_fn_inputs={"target_tokens": d.loss_fn_inputs["target_tokens"]}) for d in data]
    with pytest.raises(ValueError, match=r"has no loss_fn_inputs\['target_distribution'\]"):
        client.forward_backward_custom(bare, handle)


def test_handle_from_another_session_is_rejected(primed):
    _, client, _, data = primed
    other = __import__("tinker_offline").ServiceClient()
    handle = other.create_custom_loss(set_kl, {"logprobs": 2, "target_distribution": 2}).result()
    with pytest.raises(ValueError, match="can only be used by clients of that session"):
        client.forward_backward_custom(data, handle)


def test_untraceable_loss_is_rejected_by_the_sdk_checks(primed):
    service_client, _, _, _ = primed

    def branches(logprobs, target_distribution):
        if logprobs.sum() > 0:
            return logprobs.sum(), {}
        return -logprobs.sum(), {}

    with pytest.raises(ValueError, match="cannot be traced by torch.fx"):
        service_client.create_custom_loss(branches, {"logprobs": 2, "target_distribution": 2})

    def bad_metric(logprobs, target_distribution):
        return logprobs.sum(), {"kl": logprobs.sum()}

    with pytest.raises(ValueError, match=r"must be named custom/<name>:sum or custom/<name>:mean"):
        service_client.create_custom_loss(bad_metric, {"logprobs": 2, "target_distribution": 2})


@pytest.mark.parametrize(
    "params, message",
    [
        (types.AdamParams(learning_rate=-1.0), r"learning_rate=-1.0 must be finite and >= 0"),
        (types.AdamParams(beta1=1.0), r"beta1=1.0 must be in \[0, 1\)"),
        (types.AdamParams(eps=0.0), r"eps=0.0 must be > 0"),
        (types.AdamParams(grad_clip_norm=-1.0), r"grad_clip_norm=-1.0 must be >= 0"),
    ],
)
def test_bad_adam_params_change_nothing(primed, params, message):
    _, client, _, _ = primed
    before = snapshot(client)
    with pytest.raises(Exception, match=message):
        client.optim_step(params).result()
    assert_unchanged(client, before)
