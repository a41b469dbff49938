"""The library token_set: the KL reads the row build_datum scored, the label checks, the datum
check, the evaluation, and an import that reads nothing. The #703 page's text-only path runs
with the page's fix cell."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from tinker import types

import token_set
from conftest import REPO_ROOT
from engine_support import BASE_MODEL, client, new_client  # noqa: F401  (client is a fixture)

K, T = 4, 7
TARGET = [0.5, 0.25, 0.25, 0.0]
LABEL_IDS = [11, 12, 13, 14]


def text_input(length: int) -> types.ModelInput:
    return types.ModelInput.from_ints(list(range(100, 100 + length)))


def manual_kl(row_logprobs: torch.Tensor, p) -> torch.Tensor:
    p = torch.tensor(p)
    log_q = row_logprobs - torch.logsumexp(row_logprobs, dim=-1)
    return (torch.xlogy(p, p) - p * log_q).sum()


# ------------------------------------------------------------------ the scored row
@pytest.mark.parametrize("scored_row", [0, 3, T - 1])
def test_the_kl_is_read_at_the_row_build_datum_scored(scored_row):
    torch.manual_seed(0)
    logprobs = torch.randn(T, K).log_softmax(-1).requires_grad_()
    datum = token_set.build_datum(text_input(T), TARGET, LABEL_IDS, scored_row=scored_row)
    loss, metrics = token_set.kl_over_labels([datum], [logprobs])
    assert torch.allclose(loss, manual_kl(logprobs[scored_row].detach(), TARGET))
    assert metrics["kl:sum"] == pytest.approx(float(loss.detach()))
    loss.backward()
    gradient_rows = torch.nonzero(logprobs.grad.abs().sum(-1)).flatten().tolist()
    assert gradient_rows == [scored_row], "only the scored row may get a gradient"


@pytest.mark.parametrize("scored_row", [0, 3])
def test_a_datum_scored_before_its_end_is_the_prompt_cut_at_that_row(scored_row):
    """What a causal model gives row r of the full prompt it gives the last row of the prompt cut
    after position r; the loss and its gradient must be the same for both datums."""
    torch.manual_seed(1)
    full = torch.randn(T, K).log_softmax(-1)
    full_logprobs, cut_logprobs = full.clone().requires_grad_(), full[: scored_row + 1].clone().requires_grad_()
    full_datum = token_set.build_datum(text_input(T), TARGET, LABEL_IDS, scored_row=scored_row)
    cut_datum = token_set.build_datum(text_input(scored_row + 1), TARGET, LABEL_IDS)
    full_loss, _ = token_set.kl_over_labels([full_datum], [full_logprobs])
    cut_loss, _ = token_set.kl_over_labels([cut_datum], [cut_logprobs])
    assert float(full_loss) > 0.01 and torch.allclose(full_loss, cut_loss)
    full_loss.backward(), cut_loss.backward()
    assert torch.equal(full_logprobs.grad[: scored_row + 1], cut_logprobs.grad)


def test_the_handle_form_equals_the_callable_at_any_row():
    torch.manual_seed(2)
    for scored_row in (1, T - 1):
        datum = token_set.build_datum(text_input(T), TARGET, LABEL_IDS, scored_row=scored_row)
        a = torch.randn(T, K).log_softmax(-1).requires_grad_()
        b = a.detach().clone().requires_grad_()
        callable_loss, _ = token_set.kl_over_labels([datum], [a])
        handle_loss, metrics = token_set.set_kl(b, datum.loss_fn_inputs["target_distribution"].to_torch())
        assert torch.allclose(callable_loss, handle_loss) and torch.allclose(metrics["custom/kl:sum"], handle_loss)
        callable_loss.backward(), handle_loss.backward()
        assert torch.allclose(a.grad, b.grad)


def test_the_kl_refuses_a_datum_it_cannot_score_rather_than_train_zero():
    logprobs = torch.randn(T, K).log_softmax(-1)
    datum = token_set.build_datum(text_input(T), TARGET, LABEL_IDS)
    zeros = types.Datum(model_input=datum.model_input, loss_fn_inputs={
        **datum.loss_fn_inputs, "target_distribution": types.TensorData.from_torch_sparse(torch.zeros(T, K))})
    two_rows = torch.zeros(T, K)
    two_rows[2], two_rows[5] = torch.tensor(TARGET), torch.tensor(TARGET)
    twice = types.Datum(model_input=datum.model_input, loss_fn_inputs={
        **datum.loss_fn_inputs, "target_distribution": types.TensorData.from_torch_sparse(two_rows)})
    for broken in (zeros, twice):
        with pytest.raises(ValueError, match="one distribution on one row"):
            token_set.kl_over_labels([broken], [logprobs])
    with pytest.raises(ValueError):  # a list of logprobs that does not match the datums
        token_set.kl_over_labels([datum, datum], [logprobs])


class FixedLogprobsClient:
    """Answers forward() with the logprobs it was given, as a TrainingClient's future would."""

    def __init__(self, logprobs_list):
        self.logprobs_list = logprobs_list

    def forward(self, data, loss_fn):
        assert loss_fn == "cross_entropy" and all(set(d.loss_fn_inputs) <= {"target_tokens", "weights"} for d in data)
        outputs = [{"logprobs": types.TensorData.from_torch(lp)} for lp in self.logprobs_list]
        return type("Future", (), {"result": lambda self: types.ForwardBackwardOutput(
            loss_fn_output_type="cross_entropy", loss_fn_outputs=outputs, metrics={})})()


def test_evaluation_reads_the_scored_row():
    torch.manual_seed(3)
    logprobs = torch.randn(T, K).log_softmax(-1)
    datum = token_set.build_datum(text_input(T), TARGET, LABEL_IDS, scored_row=2)
    assert token_set.scored_row_of(datum) == 2
    result = token_set.evaluate_examples(FixedLogprobsClient([logprobs]), [datum])
    assert result["kl"][0] == pytest.approx(float(manual_kl(logprobs[2], TARGET)), rel=1e-6)
    assert result["mass"][0] == pytest.approx(float(logprobs[2].exp().sum()), rel=1e-6)
    assert result["q"][0] == pytest.approx(logprobs[2].softmax(-1).numpy(), rel=1e-5)
    assert result["top_agrees"][0] == (int(logprobs[2].argmax()) == 0)


def test_datum_problems_sees_each_mistake():
    datum = token_set.build_datum(text_input(T), TARGET, LABEL_IDS)
    assert token_set.datum_problems(datum, LABEL_IDS) == []
    inputs = datum.loss_fn_inputs
    off_by_one = np.zeros((T, K), dtype=np.int64)
    off_by_one[T - 2] = LABEL_IDS
    cases = {
        "rows have non-zero weights": {**inputs, "weights": np.ones((T, K), dtype=np.float32)},
        "no weights": {k: v for k, v in inputs.items() if k != "weights"},
        "does not hold the 4 label ids": {**inputs, "target_tokens": off_by_one},
    }
    for expected, loss_fn_inputs in cases.items():
        problems = token_set.datum_problems(types.Datum(model_input=datum.model_input, loss_fn_inputs=loss_fn_inputs), LABEL_IDS)
        assert any(expected in problem for problem in problems), (expected, problems)
    longer = types.Datum(model_input=text_input(T + 3), loss_fn_inputs=inputs)
    assert any("model_input.length is 10" in p for p in token_set.datum_problems(longer, LABEL_IDS))


def test_target_vector_and_baselines():
    labels = ["a", "b", "c"]
    assert token_set.target_vector({"b": 1.0}, labels).tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="not labels"):
        token_set.target_vector({"d": 1.0}, labels)
    targets = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    baselines = token_set.baseline_kls(targets, np.array([[0.5, 0.5, 0.0]]))
    assert baselines["uniform"] == pytest.approx([np.log(3), np.log(3)])
    assert baselines["training prior"][0] == pytest.approx(np.log(2)) and np.isinf(baselines["training prior"][1])


def test_importing_token_set_reads_no_file_and_no_url():
    """Only Python's own import machinery may open files; nothing may connect anywhere."""
    probe = r"""
import sys
events = []
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and not args[0].endswith((".py", ".pyc", ".so", ".pth")) and "/site-packages/" not in args[0] and "/lib/python" not in args[0]:
        events.append(("open", args[0]))
    if event in ("socket.connect", "urllib.Request", "socket.getaddrinfo"):
        events.append((event, str(args[:2])))
sys.addaudithook(hook)
import token_set
print(events)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    events = out.stdout.strip().splitlines()[-1]
    repo_files = [path for path in re.findall(r"'open', '([^']*)'", events) if str(REPO_ROOT) in path]
    assert "socket" not in events and "urllib" not in events and not repo_files, events


# ------------------------------------------------------------ on the offline model
@pytest.mark.slow
def test_on_the_model_a_row_before_the_end_trains_like_the_cut_prompt():
    """Slow: two LoRA clients on SmolLM2 take one custom step each."""
    service_client = __import__("tinker_offline").ServiceClient()
    tokenizer = new_client(service_client).get_tokenizer()
    prompt = tokenizer.encode("<|im_start|>user\nI lost my keys again.<|im_end|>\n<|im_start|>assistant\nEmotion:",
                              add_special_tokens=False)
    answer = tokenizer.encode(" anger<|im_end|>\n", add_special_tokens=False)
    label_ids = token_set.label_token_ids(tokenizer, ["joy", "anger", "fear"])
    target = [0.2, 0.7, 0.1]
    full = token_set.build_datum(types.ModelInput.from_ints(prompt + answer), target, label_ids, scored_row=len(prompt) - 1)
    cut = token_set.build_datum(types.ModelInput.from_ints(prompt), target, label_ids)
    results = []
    for datum in (full, cut):
        training_client = new_client(service_client, rank=8, seed=0)
        loss = training_client.forward_backward_custom([datum], token_set.kl_over_labels).result().metrics["loss:sum"]
        training_client.optim_step(types.AdamParams(learning_rate=1e-3)).result()
        after = token_set.evaluate_examples(training_client, [datum])
        results.append((loss, float(after["kl"][0])))
    (full_before, full_after), (cut_before, cut_after) = results
    assert full_before > 0.05 and full_before == pytest.approx(cut_before, rel=1e-4)
    assert full_after == pytest.approx(cut_after, rel=1e-3) and abs(full_after - full_before) > 1e-3  # it trained


TICKET_LABELS = ["billing", "shipping", "returns", "account", "technical", "sales"]


@pytest.fixture(scope="module")
def ticket_prompt(client):  # noqa: F811
    tokenizer = client.get_tokenizer()
    messages = [{"role": "system", "content": "Route the support ticket to a team."},
                {"role": "user", "content": "My parcel never arrived and the tracking page is blank."}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + "Team:"
    return tokenizer, types.ModelInput.from_ints(tokenizer.encode(text, add_special_tokens=False))


def test_label_token_problems_names_each_label_that_splits(ticket_prompt):
    tokenizer, model_input = ticket_prompt
    ending = list(model_input.chunks[-1].tokens)
    spaced_ids, spaced_problems = token_set.label_token_problems(tokenizer, ending, TICKET_LABELS)
    assert spaced_problems == [] and len(set(spaced_ids)) == len(TICKET_LABELS)
    capitalized = [word.capitalize() for word in TICKET_LABELS]
    _, problems = token_set.label_token_problems(tokenizer, ending, capitalized)
    assert problems == ["' Billing' is 2 tokens: ['ĠB', 'illing']"], problems
    _, problems = token_set.label_token_problems(tokenizer, ending, ["irony", "sarcasm"])  # the spaced form splits
    assert problems == ["' sarcasm' is 2 tokens: ['Ġsarc', 'asm']"], problems
    with pytest.raises(ValueError, match="' sarcasm' is 2 tokens"):
        token_set.label_token_ids(tokenizer, ["irony", "sarcasm"])


def test_compare_label_forms_recommends_the_best_form_that_passes_and_says_when_a_failing_one_has_more(
        client, ticket_prompt):  # noqa: F811
    tokenizer, model_input = ticket_prompt
    report = token_set.compare_label_forms(client, tokenizer, model_input, TICKET_LABELS)
    forms = {form.name: form for form in report.forms}
    assert set(forms) == set(token_set.LABEL_FORMS)
    assert report.recommended.name == "spaced" and not forms["spaced"].problems
    assert report.most_mass.name == "spaced capitalized" and forms["spaced capitalized"].problems
    ratio = forms["spaced capitalized"].mass / forms["spaced"].mass
    assert ratio > 3, ratio
    text = str(report)
    assert "Use the spaced form" in text
    assert f"The spaced capitalized form holds {ratio:.3g}x more mass but fails the token checks" in text
    # small numbers are printed to three significant figures, never rounded to zero
    assert f"{forms['spaced'].mass:.3g}" in text and "0.0000" not in text


@pytest.mark.slow
def test_the_text_only_path_feeds_the_703_fix_cell():
    """Slow: runs the #703 page's text-only lines and its fix cell on SmolLM2."""
    page = json.loads((REPO_ROOT / "book" / "issue-703.ipynb").read_text())
    cells = ["".join(cell["source"]) for cell in page["cells"]]
    markdown = next(c for c in cells if "(issue-703-text-only)=" in c)
    text_only = re.search(r"\(issue-703-text-only\)=\n```python\n(.*?)```", markdown, re.S).group(1)
    fix = next(c for c in cells if c.startswith("import numpy as np") and "forward_backward_custom" in c)
    namespace = {"types": types, "service_client": __import__("tinker_offline").ServiceClient(), "base_model": BASE_MODEL}
    exec(text_only, namespace)  # noqa: S102 - the page's own code
    assert {"training_client", "model_input", "label_ids", "target"} <= set(namespace)
    exec(fix, namespace)  # noqa: S102
    kl_before = namespace["step_result"].metrics["loss:sum"]
    kl_after = float(namespace["kl_over_labels"]([namespace["datum"]], [namespace["logprobs_after"]])[0])
    assert np.isfinite(kl_before) and np.isfinite(kl_after) and kl_after != kl_before  # one real step
    assert list(namespace["logprobs_after"].shape) == [namespace["model_input"].length, 3]
