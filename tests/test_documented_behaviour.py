"""What Tinker's loss-function documentation says the SDK does, checked on tinker_offline.

Sources (each test's docstring names the one it rests on):

- "Loss Functions": https://tinker-docs.thinkingmachines.ai/tinker/losses
- "Cross-Entropy": https://tinker-docs.thinkingmachines.ai/tinker/losses/cross-entropy
- "Custom Loss Functions": https://tinker-docs.thinkingmachines.ai/tinker/losses/custom
- the older "Loss functions in Tinker" page, https://tinker-docs.thinkingmachines.ai/losses
  (tinker-cookbook docs/losses.mdx)
- tinker-cookbook tutorial 202, tutorials/202_loss_functions.py (rendered at
  https://tinker-docs.thinkingmachines.ai/tutorials/core-concepts/loss-functions)

The tests are this project's own: they state what a page says happens and build the
smallest request that shows it. Where the engine departs from Tinker on purpose (it runs
only ``cross_entropy`` and custom losses) the test asserts the refusal; where a page's
example fails with the real tinker 0.38 SDK or with transformers 5 too, the test asserts
that exact failure, so a change in either shows up here.

Clients: ``shared`` is never stepped, so its weights stay the base model's and a forward
pass on it is a reference for every other request on it; tests that read gradients, or
whose request poisons a client, make their own client (about 0.2 s each once the base
model is loaded).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re

import pytest
import torch
from pydantic import ValidationError
from tinker import types
from tinker.lib.public_interfaces.api_future import APIFuture
from tinker.lib.public_interfaces.training_client import TrainingClient as SdkTrainingClient

import tinker
import tinker_offline

BASE_MODEL = tinker_offline.DEFAULT_BASE_MODEL

# (prompt, completion) pairs of different token lengths, written for these tests.
PROMPTS_AND_COMPLETIONS = [
    ("Water boils at", " one hundred degrees Celsius."),
    ("The opposite of hot is", " cold."),
]
QUIZ = "Which planet is known as the red planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Saturn\nAnswer:"
LETTERS = [" A", " B", " C", " D"]
RIGHT_LETTER = 1  # B) Mars


# ------------------------------------------------------------------------- helpers
def new_client(service):
    return service.create_lora_training_client(base_model=BASE_MODEL, rank=8, seed=0).result()


def completion_datum(tokenizer, prompt: str, completion: str) -> types.Datum:
    """Next-token targets for prompt + completion, weight 1 on the completion's tokens only,
    given as plain Python lists."""
    head = tokenizer.encode(prompt)
    tail = tokenizer.encode(completion)
    sequence = head + tail
    scored = [0.0] * len(head) + [1.0] * len(tail)
    return types.Datum(
        model_input=types.ModelInput.from_ints(sequence[:-1]),
        loss_fn_inputs={"target_tokens": sequence[1:], "weights": scored[1:]},
    )


def chat_prompt(tokenizer, text: str) -> list[int]:
    """The chat-formatted prompt as token ids (transformers 5 needs return_dict=False)."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, return_dict=False
    )


def squared_logprobs(data, logprobs_list):
    """The sum of every squared target logprob, over all datums."""
    total = sum((lp**2).sum() for lp in logprobs_list)
    return total, {"squared": total.item()}


def run_coroutine(coroutine):
    """Await ``coroutine`` on a thread with its own event loop (the main thread may already
    run one: the browser tests' Playwright does)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def refusal(loss_fn: str) -> str:
    return re.escape(
        f"loss_fn '{loss_fn}' is not supported offline; use one of ['cross_entropy'] "
        "or forward_backward_custom for your own loss"
    )


# ------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """One intra-op thread for this module's small model calls, restored afterwards: on a
    2-core machine with another busy process, two threads made each call many times slower."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def service():
    return tinker_offline.ServiceClient()


@pytest.fixture(scope="module")
def shared(service):
    """A client that is never stepped (its gradients pile up; no test reads them)."""
    return new_client(service)


@pytest.fixture(scope="module")
def tokenizer(shared):
    return shared.get_tokenizer()


@pytest.fixture(scope="module")
def pair(tokenizer) -> list[types.Datum]:
    data = [completion_datum(tokenizer, p, c) for p, c in PROMPTS_AND_COMPLETIONS]
    assert data[0].model_input.length != data[1].model_input.length
    return data


@pytest.fixture(scope="module")
def reference(shared, pair) -> list[torch.Tensor]:
    """Each datum's target logprobs under the base model (a forward pass: no gradient)."""
    out = shared.forward(pair, "cross_entropy").result()
    return [o["logprobs"].to_torch() for o in out.loss_fn_outputs]


@pytest.fixture(scope="module")
def sft_result(shared, pair):
    return shared.forward_backward(pair, loss_fn="cross_entropy").result()


@pytest.fixture(scope="module")
def rl_datum(pair, reference) -> types.Datum:
    """The first datum as an on-policy rollout: sampling logprobs are the model's own, the
    advantage is 1 on the completion and 0 on the prompt."""
    first = pair[0]
    return types.Datum(
        model_input=first.model_input,
        loss_fn_inputs={
            "target_tokens": first.loss_fn_inputs["target_tokens"],
            "logprobs": reference[0].tolist(),
            "advantages": first.loss_fn_inputs["weights"].to_torch().tolist(),
        },
    )


# --------------------------------------------------------------- built-in losses
def test_cross_entropy_sums_minus_logprobs_on_the_weighted_rows(pair, reference, sft_result):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses (SFT datum, choosing a loss by
    name): forward_backward with loss_fn="cross_entropy" returns one [N] logprobs record
    per datum and the loss sum(-logprobs * weights) as metrics["loss:sum"], so 0/1 weights
    score the completion and ignore the prompt."""
    assert sft_result.loss_fn_output_type == "ArrayRecord"
    assert len(sft_result.loss_fn_outputs) == len(pair)
    for datum, record, expected in zip(pair, sft_result.loss_fn_outputs, reference):
        assert record["logprobs"].shape == [datum.model_input.length]
        torch.testing.assert_close(record["logprobs"].to_torch(), expected, atol=1e-5, rtol=1e-5)
    completion_only = sum(
        -lp[d.loss_fn_inputs["weights"].to_torch() > 0].sum() for d, lp in zip(pair, reference)
    )
    assert sft_result.metrics["loss:sum"] == pytest.approx(float(completion_only), rel=1e-5)
    # The page prints `result.loss`; tinker 0.38's output has no such field.
    with pytest.raises(AttributeError, match=re.escape("'ForwardBackwardOutput' object has no attribute 'loss'")):
        sft_result.loss


def test_logprobs_records_are_tensor_data_without_indexing(sft_result):
    """tinker-cookbook tutorials/202_loss_functions.py ("Inspect the outputs"): each record's
    "logprobs" is a tinker.TensorData, which in tinker 0.38 cannot be sliced as the tutorial
    does (`logprobs[-3:]`); .to_torch() and .tolist() give the values."""
    logprobs = sft_result.loss_fn_outputs[0]["logprobs"]
    assert isinstance(logprobs, types.TensorData)
    with pytest.raises(TypeError, match=re.escape("'TensorData' object is not subscriptable")):
        logprobs[-3:]
    assert logprobs.to_torch()[-3:].tolist() == pytest.approx(logprobs.tolist()[-3:])


@pytest.mark.parametrize(
    "loss_fn, config",
    [
        ("importance_sampling", None),
        ("ppo", None),
        ("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1}),
        ("cispo", {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
        ("dro", {"beta": 0.05}),
    ],
    ids=["importance_sampling", "ppo", "ppo-clip-config", "cispo", "dro"],
)
def test_policy_gradient_losses_are_refused_offline(shared, rl_datum, loss_fn, config):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses and the older
    https://tinker-docs.thinkingmachines.ai/losses: the RL losses take target_tokens,
    logprobs and advantages (ppo and cispo also clip thresholds, dro a beta); tinker_offline
    does not implement them and its future raises RequestFailedError naming the loss."""
    future = shared.forward_backward([rl_datum], loss_fn=loss_fn, loss_fn_config=config)
    with pytest.raises(tinker.RequestFailedError, match=refusal(loss_fn)):
        future.result()


def test_top_k_distillation_trains_on_the_teachers_top_k(service, shared, tokenizer):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/cross-entropy#top-k-distillation:
    a teacher-forced completion's top-K prompt logprobs become [N, K] target_tokens with the
    renormalised teacher probabilities as [N, K] weights; cross_entropy then returns [N, K]
    logprobs and loss:sum = sum(-logprobs * weights)."""
    K = 5
    teacher = service.create_sampling_client(base_model=BASE_MODEL).result()
    prompt = chat_prompt(tokenizer, "Name a colour.")
    draw = teacher.sample(
        prompt=types.ModelInput.from_ints(prompt),
        num_samples=1,
        sampling_params=types.SamplingParams(max_tokens=4, temperature=0.7, seed=3, stop=[]),
    ).result()
    completion = list(draw.sequences[0].tokens)
    assert len(completion) == 4
    forced = teacher.sample(
        prompt=types.ModelInput.from_ints(prompt + completion),
        num_samples=1,
        sampling_params=types.SamplingParams(max_tokens=1),
        include_prompt_logprobs=True,
        topk_prompt_logprobs=K,
    ).result()
    # Entry i of topk_prompt_logprobs ranks the candidates for token i; the student's row
    # i - 1 predicts that token.
    top = forced.topk_prompt_logprobs[len(prompt):]
    teacher_ids = torch.tensor([[token for token, _ in row] for row in top])
    teacher_lp = torch.tensor([[lp for _, lp in row] for row in top])
    student_input = prompt + completion[:-1]
    rows = slice(len(prompt) - 1, len(prompt) - 1 + len(completion))
    target_tokens = torch.zeros(len(student_input), K, dtype=torch.long)
    weights = torch.zeros(len(student_input), K)
    target_tokens[rows] = teacher_ids
    weights[rows] = torch.softmax(teacher_lp, dim=-1)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(student_input),
        loss_fn_inputs={"target_tokens": target_tokens, "weights": weights},
    )

    result = shared.forward_backward([datum], loss_fn="cross_entropy").result()
    logprobs = result.loss_fn_outputs[0]["logprobs"]
    assert logprobs.shape == [len(student_input), K]
    logprobs = logprobs.to_torch()
    assert result.metrics["loss:sum"] == pytest.approx(float(-(logprobs * weights).sum()), rel=1e-5)
    assert result.metrics["loss:sum"] > 0
    # The untrained student is the teacher's model: on the completion rows it scores the
    # teacher's K candidates as the teacher did (before renormalising).
    torch.testing.assert_close(logprobs[rows], teacher_lp, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------- custom losses
def test_custom_loss_gets_one_leaf_tensor_per_datum_and_two_passes_run(shared, pair, reference):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/custom and tinker-cookbook
    tutorials/202_loss_functions.py ("Custom loss with forward_backward_custom"): the loss is
    called once with the data and a list holding each datum's logprobs (target_tokens'
    shape, requires_grad=True); its value is loss:sum, its metrics are merged in, and the
    backward pass is cross_entropy with weights -dloss/dlogprobs, reported as
    surrogate_loss:sum."""
    calls = []

    def recording_loss(data, logprobs_list):
        calls.append((data, logprobs_list))
        return squared_logprobs(data, logprobs_list)

    future = shared.forward_backward_custom(pair, recording_loss)
    assert isinstance(future, APIFuture)
    # The older page unpacks `loss, metrics = forward_backward_custom(...)`: a future is
    # not a pair.
    with pytest.raises(TypeError, match="cannot unpack non-iterable"):
        loss, metrics = future
    result = future.result()

    assert len(calls) == 1
    data, logprobs_list = calls[0]
    assert data == pair and isinstance(logprobs_list, list) and len(logprobs_list) == len(pair)
    for lp, expected in zip(logprobs_list, reference):
        assert lp.shape == expected.shape and lp.dtype == torch.float32
        assert lp.requires_grad and lp.is_leaf
        torch.testing.assert_close(lp.detach(), expected, atol=1e-5, rtol=1e-5)
    assert [r["logprobs"].shape for r in result.loss_fn_outputs] == [list(e.shape) for e in reference]

    expected_loss = float(sum((lp**2).sum() for lp in reference))
    assert result.metrics["loss:sum"] == pytest.approx(expected_loss, rel=1e-5)
    assert result.metrics["squared"] == pytest.approx(result.metrics["loss:sum"], rel=1e-6)
    # d(lp^2)/dlp = 2 lp, so the surrogate sum(-lp * weights) = sum(2 lp^2) = 2 x the loss.
    assert result.metrics["surrogate_loss:sum"] == pytest.approx(2 * expected_loss, rel=1e-4)


def test_custom_loss_gradient_is_the_losss_own_gradient(service, pair):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/custom and the older
    https://tinker-docs.thinkingmachines.ai/losses ("How it works"): the linear surrogate
    has the same gradient as the nonlinear loss, so the gradient forward_backward_custom
    leaves on the LoRA weights equals autograd of that loss through the whole model."""
    client = new_client(service)
    # LoRA's B matrices start at zero, which zeroes every A gradient; one step first.
    client.forward_backward(pair, "cross_entropy").result()
    client.optim_step(types.AdamParams(learning_rate=1e-2)).result()

    result = client.forward_backward_custom(pair, squared_logprobs).result()
    engine = client.accumulated_gradients()

    # The reference: the model's full [T, vocab] logits (not the engine's gathered path),
    # one datum at a time, and plain autograd of the squared-logprob loss.
    model = client._model.peft_model
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    loss = torch.zeros(())
    for datum in pair:
        logits = model(input_ids=torch.tensor([datum.model_input.to_ints()])).logits[0]
        targets = datum.loss_fn_inputs["target_tokens"].to_torch()
        logprobs = torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None])[:, 0]
        loss = loss + (logprobs**2).sum()
    grads = dict(zip(named, torch.autograd.grad(loss, list(named.values()))))

    assert result.metrics["loss:sum"] == pytest.approx(loss.item(), rel=1e-4)
    assert engine.keys() == grads.keys()
    assert all(g is not None for g in engine.values())
    for name, expected in grads.items():
        scale = float(expected.abs().max())
        assert scale > 0, name
        torch.testing.assert_close(engine[name], expected, atol=5e-3 * scale, rtol=0, msg=lambda m: f"{name}: {m}")


def test_variance_loss_spans_every_datums_logprobs(shared, pair, reference):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/custom (variance example): with
    [N] targets each list entry is 1-D, so torch.cat joins the datums' logprobs and the
    returned loss:sum is their variance."""

    def spread(data, logprobs_list):
        value = torch.var(torch.cat(logprobs_list))
        return value, {"spread": value.item()}

    result = shared.forward_backward_custom(pair, spread).result()
    expected = float(torch.var(torch.cat(reference)))
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-4)
    assert result.metrics["spread"] == pytest.approx(expected, rel=1e-4)


def test_pairwise_preference_loss_sees_the_datums_in_order(shared, pair, reference):
    """tinker-cookbook tutorials/202_loss_functions.py (DPO-style loss): one
    forward_backward_custom call can compare datums, since logprobs_list[i] belongs to
    data[i]; here data[0] is preferred, data[1] rejected, and the loss is
    -logsigmoid(beta * (sum logprobs[0] - sum logprobs[1]))."""
    beta = 0.1

    def preference(data, logprobs_list):
        margin = logprobs_list[0].sum() - logprobs_list[1].sum()
        value = -torch.nn.functional.logsigmoid(beta * margin)
        return value, {"preference": value.item()}

    result = shared.forward_backward_custom(pair, preference).result()
    margin = reference[0].sum() - reference[1].sum()
    expected = float(-torch.nn.functional.logsigmoid(beta * margin))
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["preference"] == pytest.approx(expected, rel=1e-5)
    assert [r["logprobs"].shape for r in result.loss_fn_outputs] == [[d.model_input.length] for d in pair]


def test_a_loss_written_for_one_tensor_fails_on_the_list(service, pair):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/custom (first example) squares
    `logprobs` as if it were one tensor; forward_backward_custom passes a list, so the request
    fails with Python's TypeError for `list ** int`, in tinker 0.38 as here."""
    client = new_client(service)  # the failure poisons the client

    def one_tensor_loss(data, logprobs):
        value = (logprobs**2).sum()
        return value, {}

    with pytest.raises(TypeError, match=re.escape("unsupported operand type(s) for ** or pow(): 'list' and 'int'")):
        client.forward_backward_custom(pair, one_tensor_loss).result()


def test_multi_target_loss_over_answer_letters(shared, tokenizer):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/custom#multi-target-loss: [N, K]
    target_tokens (the K answer letters on the last row) give the custom loss [N, K]
    logprobs, so it can renormalise over the letters and score the right one."""
    prompt = chat_prompt(tokenizer, QUIZ)
    letter_ids = [tokenizer.encode(letter, add_special_tokens=False)[0] for letter in LETTERS]
    shape = (len(prompt), len(LETTERS))
    target_tokens = torch.zeros(shape, dtype=torch.long)
    target_tokens[-1] = torch.tensor(letter_ids)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(prompt),
        # Explicit zero weights: without them tinker 0.38 fails (next test).
        loss_fn_inputs={"target_tokens": target_tokens, "weights": torch.zeros(shape)},
    )
    seen = []

    def right_letter_loss(data, logprobs_list):
        seen.append(logprobs_list[0].shape)
        last = torch.log_softmax(logprobs_list[0][-1], dim=-1)
        value = -last[RIGHT_LETTER]
        return value, {"right_letter_nll": value.item()}

    result = shared.forward_backward_custom([datum], right_letter_loss).result()
    assert seen == [torch.Size(shape)]
    assert result.loss_fn_outputs[0]["logprobs"].shape == list(shape)
    forward = shared.forward([datum], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].to_torch()
    expected = float(-torch.log_softmax(forward[-1], dim=-1)[RIGHT_LETTER])
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["right_letter_nll"] == pytest.approx(expected, rel=1e-5)
    assert expected > 0


def test_multi_target_datum_without_weights_fails_in_tinker_0_38(service, tokenizer):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/custom#multi-target-loss as
    published gives no weights; tinker.Datum stores the mostly-zero [N, 4] torch
    target_tokens as sparse CSR, and the SDK's forward_backward_custom then builds zero
    weights from its 4 stored values with the [N, 4] shape: ValueError at call time."""
    client = new_client(service)
    prompt = chat_prompt(tokenizer, QUIZ)
    n = len(prompt)
    target_tokens = torch.zeros(n, 4, dtype=torch.long)
    target_tokens[-1] = torch.tensor([tokenizer.encode(x, add_special_tokens=False)[0] for x in LETTERS])
    datum = tinker.Datum(model_input=tinker.ModelInput.from_ints(prompt), loss_fn_inputs={"target_tokens": target_tokens})
    assert datum.loss_fn_inputs["target_tokens"].sparse_crow_indices is not None
    message = re.escape(f"cannot reshape array of size 4 into shape ({n},4)")
    # The SDK's own step fails so, and the engine fails where the SDK does.
    with pytest.raises(ValueError, match=message):
        SdkTrainingClient._get_custom_loss_forward_data(None, [datum], "cross_entropy")
    with pytest.raises(ValueError, match=message):
        client.forward_backward_custom([datum], lambda data, lps: (lps[0][-1].sum(), {}))


def test_chat_template_gives_a_batch_encoding_under_transformers_5(tokenizer):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses/cross-entropy#top-k-distillation and
    .../custom#multi-target-loss pass apply_chat_template(messages,
    add_generation_prompt=True) to ModelInput.from_ints as a token list (transformers 4);
    transformers 5 returns a BatchEncoding, which pydantic refuses, and return_dict=False
    gives the list."""
    messages = [{"role": "user", "content": QUIZ}]
    encoding = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert not isinstance(encoding, list)
    with pytest.raises(ValidationError, match="Input should be an instance of Sequence"):
        types.ModelInput.from_ints(encoding)
    tokens = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    assert tokens == list(encoding["input_ids"])
    assert types.ModelInput.from_ints(tokens).length == len(tokens)


def test_ppo_clipping_written_as_a_custom_loss(service, pair, reference):
    """tinker-cookbook tutorials/202_loss_functions.py ("PPO with custom clipping thresholds")
    and https://tinker-docs.thinkingmachines.ai/losses (PPO objective): the loss is
    -sum(min(ratio * A, clip(ratio, low, high) * A)); a ratio above a tight band's top with
    A > 0 is clipped and trains nothing, while a wide band lets it through."""
    client = new_client(service)
    first = pair[0]
    completion = first.loss_fn_inputs["weights"].to_torch() > 0
    sampled = reference[0] - 0.3 * completion  # ratio e^0.3 ~ 1.35 on the completion
    advantages = completion.float()

    def ppo(low, high):
        def loss(data, logprobs_list):
            ratio = torch.exp(logprobs_list[0] - sampled)
            objective = torch.min(ratio * advantages, torch.clamp(ratio, low, high) * advantages)
            value = -objective.sum()
            return value, {"ppo": value.item()}

        return loss

    tight = client.forward_backward_custom([first], ppo(0.9, 1.1)).result()
    assert tight.metrics["loss:sum"] == pytest.approx(-1.1 * int(completion.sum()), rel=1e-5)
    assert tight.metrics["surrogate_loss:sum"] == 0
    assert all(g is not None and not g.any() for g in client.accumulated_gradients().values())

    wide = client.forward_backward_custom([first], ppo(0.5, 1.5)).result()
    assert wide.metrics["loss:sum"] == pytest.approx(-float(torch.exp(torch.tensor(0.3))) * int(completion.sum()), rel=1e-4)
    assert any(g.any() for g in client.accumulated_gradients().values())


def test_the_documented_async_forms_work_and_are_deprecated(shared, pair, reference, sft_result):
    """https://tinker-docs.thinkingmachines.ai/tinker/losses and tinker-cookbook
    tutorials/202_loss_functions.py await forward_backward_async /
    forward_backward_custom_async and then result_async(); they give what the plain calls
    give, with tinker 0.38's FutureWarning that they are deprecated."""
    with pytest.warns(FutureWarning, match=re.escape("DEPRECATED: TrainingClient.forward_backward_async()")):
        ce_call = shared.forward_backward_async(pair, loss_fn="cross_entropy")
    with pytest.warns(FutureWarning, match=re.escape("DEPRECATED: TrainingClient.forward_backward_custom_async()")):
        custom_call = shared.forward_backward_custom_async(pair, squared_logprobs)

    async def await_both():
        ce = await (await ce_call).result_async()
        custom = await (await custom_call).result_async()
        return ce, custom

    ce, custom = run_coroutine(await_both())
    assert ce.metrics["loss:sum"] == pytest.approx(sft_result.metrics["loss:sum"], rel=1e-5)
    assert custom.metrics["loss:sum"] == pytest.approx(float(sum((lp**2).sum() for lp in reference)), rel=1e-5)
