"""The recipe (token_distribution_recipe): its checks, its plan, training on each route,
resuming, Ctrl-C and a failed step, offline.

The runs are small (8 examples, batch 4, LoRA rank 8) so that the module takes about a
minute; each run loads the model once.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tinker import types

import tinker_offline
from token_distribution_recipe import checks, data, train
from token_distribution_recipe.make_example import EXAMPLE_DIR
from token_distribution_recipe.prompts import OfflinePrompts

LABELS_FILE = EXAMPLE_DIR / "labels.json"
REPO = Path(__file__).resolve().parents[1]


def write_examples(directory, records, name="examples.jsonl"):
    """`records` as a JSONL file in `directory`, with the shipped images next to it."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "images").exists():
        shutil.copytree(EXAMPLE_DIR / "images", directory / "images")
    path = directory / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def shipped(name, count=None):
    records = [json.loads(line) for line in (EXAMPLE_DIR / name).read_text().splitlines()]
    return records[:count]


def small_config(tmp_path, **settings):
    train_file = write_examples(tmp_path / "data", shipped("train.jsonl", 8), "train.jsonl")
    defaults = dict(train_file=str(train_file), eval_file=str(train_file), labels_file=str(LABELS_FILE),
                    log_path=str(tmp_path / "run"), batch_size=4, num_epochs=1, lora_rank=8,
                    learning_rate=1e-3, eval_every=0, save_every=0, progress="lines", backend="offline")
    defaults.update(settings)
    return train.Config(**defaults)


@pytest.fixture(scope="module")
def tokenizer():
    from tinker_offline.model_store import load_tokenizer

    return load_tokenizer(tinker_offline.DEFAULT_BASE_MODEL)


def check(tokenizer, records, tmp_path, labels=None, builder=None, max_length=8192, label_end=""):
    path = write_examples(tmp_path, records)
    return checks.check_examples(data.read_examples(path), labels or data.read_labels(LABELS_FILE),
                                 builder or OfflinePrompts(tokenizer), tokenizer, "Emotion:", " ", tmp_path, max_length,
                                 "labels.json", label_end)


# --------------------------------------------------------------------------- checks
def test_the_shipped_examples_pass_their_checks_and_are_what_make_example_writes(tokenizer, tmp_path):
    checked = check(tokenizer, shipped("train.jsonl"), tmp_path)
    assert len(checked) == 24 and len({tuple(map(tuple, c.sequences)) for c in checked}) == 1
    assert all(len(c.datums) == 1 for c in checked)  # one-token labels: one datum each, as before
    with_images = [c for c in checked if any(isinstance(ch, types.ImageChunk) for ch in c.model_input.chunks)]
    assert len(with_images) == 8
    result = subprocess.run([sys.executable, "-m", "token_distribution_recipe.make_example", "--check"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_label_of_several_tokens_is_scored_by_its_whole_sequence(tokenizer, tmp_path):
    labels = data.read_labels(LABELS_FILE) + ["bittersweetness"]
    checked = check(tokenizer, shipped("train.jsonl", 2), tmp_path, labels=labels)
    pieces = tokenizer.convert_ids_to_tokens(checked[0].sequences[-1])
    assert len(pieces) > 1 and "".join(pieces).replace("Ġ", " ") == " bittersweetness"
    assert [len(c.datums) for c in checked] == [1, 1]  # one branch: every other label is one token
    (datum,) = checked[0].datums
    assert datum.model_input.length == checked[0].length + len(pieces) - 1  # one position per extra token


def test_a_label_set_that_cannot_be_scored_is_refused_once_naming_labels_file(tokenizer, tmp_path):
    labels = data.read_labels(LABELS_FILE) + ["content", "contentment"]  # ' content' begins ' contentment'
    with pytest.raises(checks.ExampleCheckError) as caught:
        check(tokenizer, shipped("train.jsonl", 3), tmp_path, labels=labels)
    message = str(caught.value)
    assert caught.value.problems == [] and isinstance(caught.value.label_set, checks.LabelSetError)
    assert message.startswith("labels.json: the label set cannot be scored exactly")
    assert message.count("'content' is the start of 'contentment'") == 1  # once, not once per example
    assert "train-0" not in message and "fix: " in message and "label_end" in message
    checked = check(tokenizer, shipped("train.jsonl", 3), tmp_path, labels=labels, label_end="<|im_end|>")
    assert all(len(seq) >= 2 for seq in checked[0].sequences)  # every label then ends with <|im_end|>


def test_a_target_that_does_not_sum_to_one_is_refused_and_nothing_is_skipped(tokenizer, tmp_path):
    records = shipped("train.jsonl", 3)
    records[1]["target"] = {"joy": 0.5, "calm": 0.3}
    records[2]["target"] = {"joy": 0.5, "happiness": 0.5}
    with pytest.raises(checks.ExampleCheckError) as caught:
        check(tokenizer, records, tmp_path)
    problems = {p.example_id: p for p in caught.value.problems}
    assert set(problems) == {"train-02", "train-03"}  # every failure reported; train-01 passes
    assert "sums to 0.8000, not 1" in problems["train-02"].what and "divide" in problems["train-02"].fix
    assert "['happiness']" in problems["train-03"].what
    assert problems["train-02"].source.endswith("examples.jsonl:2")


def test_an_image_without_expected_tokens_is_refused(tokenizer, tmp_path):
    class WithoutCounts(OfflinePrompts):
        def _image_chunk(self, image):
            return types.ImageChunk(data=super()._image_chunk(image).data, format="jpeg")

    with pytest.raises(checks.ExampleCheckError) as caught:
        check(tokenizer, shipped("train.jsonl", 2), tmp_path, builder=WithoutCounts(tokenizer))
    (problem,) = caught.value.problems  # train-01 has an image, train-02 none
    assert problem.example_id == "train-01" and "no expected_tokens" in problem.what


def test_a_missing_image_and_a_long_prompt_are_refused(tokenizer, tmp_path):
    records = shipped("train.jsonl", 2)
    records[0]["messages"][1]["content"][1]["image"] = "images/nowhere.png"
    with pytest.raises(checks.ExampleCheckError) as caught:
        check(tokenizer, records, tmp_path, max_length=40)
    problems = {p.example_id: p for p in caught.value.problems}
    assert "not found" in problems["train-01"].what and "nowhere.png" in problems["train-01"].what
    assert "more than max_length = 40" in problems["train-02"].what


@pytest.mark.parametrize("content, expected", [
    ("", "has no examples"),
    ('{"id": "a", "messages": []}\n', "missing ['target']"),
    ("not json\n", "not JSON"),
    ('{"id": "a", "messages": [{"role": "user", "content": [{"type": "video"}]}], "target": {}}\n', '"type"'),
])
def test_a_file_that_is_not_examples_is_refused_with_its_line(tmp_path, content, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(data.DataFileError, match="bad.jsonl") as caught:
        data.read_examples(path)
    assert expected in str(caught.value)


# ---------------------------------------------------------------------- dry run, CLI
def test_dry_run_prints_the_plan_and_sends_nothing(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run created a service client")

    monkeypatch.setattr(tinker_offline, "ServiceClient", refuse)
    result = train.run(small_config(tmp_path, dry_run=True))
    out = capsys.readouterr().out
    assert result.status == "dry-run"
    assert "T per example, in positions: training min" in out and "2 steps per epoch" not in out and "2 per epoch (batch 4)" in out
    assert "nothing was sent" in out and not (tmp_path / "run").exists()


@pytest.mark.parametrize("steps, eval_every, evaluations", [(6, 3, 3), (4, 3, 3), (3, 3, 2), (4, 0, 2), (4, 1, 5)])
def test_the_plan_counts_the_evaluations_the_run_makes(tmp_path, capsys, steps, eval_every, evaluations):
    """The run evaluates before training, after each eval_every-th step short of the last, and at the end."""
    config = small_config(tmp_path, dry_run=True, batch_size=8, num_epochs=steps, eval_every=eval_every)
    train.run(config)
    assert f"{evaluations} evaluation(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_the_command_line_exits_2_with_the_checks_message(tmp_path):
    """Slow: a separate Python process loads torch and the tokenizer (about 10 s)."""
    records = shipped("train.jsonl", 2)
    records[0]["target"] = {"joy": 2.0}
    path = write_examples(tmp_path, records)
    result = subprocess.run([sys.executable, "-m", "token_distribution_recipe.train", f"train_file={path}",
                             f"labels_file={LABELS_FILE}", f"log_path={tmp_path / 'run'}", "--dry-run"],
                            cwd=REPO, capture_output=True, text=True, env={**__import__("os").environ,
                                                                           "TINKER_BOOK_BACKEND": "offline"})
    assert result.returncode == 2
    assert "1 of 2 examples fail their checks; nothing was sent" in result.stderr
    assert "train-01" in result.stderr and "sums to 2.0000" in result.stderr


@pytest.mark.parametrize("argv, spelling", [
    (["--resume"], "resume=True"),
    (["--batch-size", "4"], "batch_size=4"),
    (["--batch_size=4"], "batch_size=4"),
    (["--batchsize", "4"], "batch_size=4"),
    (["--lora-rnk=8"], "lora_rank=8"),
])
def test_a_flag_is_refused_in_one_line_that_names_its_key_value_spelling(tmp_path, capsys, argv, spelling):
    required = [f"train_file={tmp_path / 'train.jsonl'}", f"labels_file={LABELS_FILE}", f"log_path={tmp_path / 'run'}"]
    with pytest.raises(SystemExit) as stopped:
        train.main([*required, *argv])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and f"{spelling}" in err, err
    assert not (tmp_path / "run").exists()


def test_a_misspelled_setting_and_a_value_chz_cannot_read_exit_2_naming_the_setting(tmp_path, capsys):
    required = [f"train_file={tmp_path / 'train.jsonl'}", f"labels_file={LABELS_FILE}", f"log_path={tmp_path / 'run'}"]
    for argv, named in (([*required, "batchsize=4"], "batch_size"), ([*required, "resume=yes"], "resume"),
                        (required[:1], "labels_file")):
        with pytest.raises(SystemExit) as stopped:
            train.main(argv)
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and named in err and "Traceback" not in err, err


def test_help_lists_the_settings_and_exits_0(capsys):
    assert train.main(["--help"]) is None  # no SystemExit: exit status 0
    out, err = capsys.readouterr()
    assert "WARNING" not in out + err and "batch_size" in out and "--dry-run" in out


@pytest.mark.slow
def test_a_flag_on_the_command_line_gives_no_traceback(tmp_path):
    """Slow: a separate Python process imports torch (a few seconds)."""
    result = subprocess.run([sys.executable, "-m", "token_distribution_recipe.train", f"train_file={tmp_path / 'x.jsonl'}",
                             f"labels_file={LABELS_FILE}", f"log_path={tmp_path / 'run'}", "--resume"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "resume=True" in result.stderr


# -------------------------------------------------------------------------- training
def metrics(run_dir):
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.slow
def test_a_short_run_lowers_the_training_kl_and_writes_its_files(tmp_path):
    """Slow: trains 4 steps on 8 examples."""
    result = train.run(small_config(tmp_path, num_epochs=2, eval_every=2, save_every=2))
    evals = [r for r in metrics(result.log_path) if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert [r["step"] for r in metrics(result.log_path) if r["split"] == "train"] == [1, 2, 3, 4]  # steps taken
    assert evals[-1]["eval_kl"] < 0.8 * evals[0]["eval_kl"]
    saved = [json.loads(line) for line in (result.log_path / "checkpoints.jsonl").read_text().splitlines()]
    assert [(c["step"], c["reason"]) for c in saved] == [(2, "save_every"), (4, "final")]
    for name in ("curves.png", "before_after.png", "config.json", "eval_predictions.jsonl"):
        assert (result.log_path / name).stat().st_size > 0
    assert json.loads((result.log_path / "config.json").read_text())["resolved"]["backend"] == "offline"
    with pytest.raises(train.RecipeError, match="holds a run already"):
        train.run(small_config(tmp_path))


#: Four steps at a constant rate, an evaluation and a saved state every two: the run the
#: stopped, failed and continued runs below must end up equal to. Step 3 is in flight between
#: two boundaries. (The rate is constant so that a finished 2-step run continued to 4 steps
#: can equal it too; test_max_steps_... covers a decaying schedule.)
RESUMABLE = dict(num_epochs=2, eval_every=2, save_every=2, lr_schedule="constant")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train.run(small_config(tmp_path_factory.mktemp("whole"), **RESUMABLE))


@pytest.mark.slow
def test_resume_after_ctrl_c_equals_an_uninterrupted_run(uninterrupted, tmp_path, monkeypatch, capsys):
    """Slow: two runs of 4 steps in all. The interruption is a real SIGINT, raised as step 3
    is submitted; the step in flight finishes, state is saved after it, and the run resumes."""
    submit, calls = train.submit_step, []

    def interrupting_submit(*args):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)
        return submit(*args)

    monkeypatch.setattr(train, "submit_step", interrupting_submit)
    first = train.run(small_config(tmp_path, **RESUMABLE))
    assert first.status == "interrupted" and first.steps_done == 3
    assert first.checkpoint["reason"] == "interrupt" and "resume=True" in capsys.readouterr().out
    monkeypatch.setattr(train, "submit_step", submit)
    with pytest.raises(train.RecipeError, match="batch_size"):
        train.run(small_config(tmp_path, resume=True, **{**RESUMABLE, "batch_size": 2}))
    rest = train.run(small_config(tmp_path, resume=True, **RESUMABLE))
    assert rest.status == "finished" and rest.steps_done == uninterrupted.steps_done == 4
    assert metrics(rest.log_path) == metrics(uninterrupted.log_path)
    for name, tensor in uninterrupted.training_client.lora_state().items():
        assert torch.equal(tensor, rest.training_client.lora_state()[name]), name


@pytest.mark.slow
def test_ctrl_c_submits_no_step_after_it_and_names_the_step_it_saves(uninterrupted, tmp_path, monkeypatch, capsys):
    """Slow: two runs of 4 steps in all. The SIGINT comes while step 3 is in flight, as step 4
    is about to be submitted (its learning rate is computed just before): step 3 finishes,
    step 4 is never submitted, both messages name step 3, and the resumed run equals an
    uninterrupted one."""
    rate, submit, submitted = train.learning_rate_at, train.submit_step, []

    def interrupting_rate(config, step, total):
        if step == 3:
            signal.raise_signal(signal.SIGINT)
        return rate(config, step, total)

    def counting_submit(*args):
        submitted.append(1)
        return submit(*args)

    monkeypatch.setattr(train, "learning_rate_at", interrupting_rate)
    monkeypatch.setattr(train, "submit_step", counting_submit)
    first = train.run(small_config(tmp_path, **RESUMABLE))
    out = capsys.readouterr().out
    saved = [json.loads(line) for line in (tmp_path / "run" / "checkpoints.jsonl").read_text().splitlines()]
    assert first.status == "interrupted" and len(submitted) == 3
    assert saved[-1] == first.checkpoint and (saved[-1]["step"], saved[-1]["reason"]) == (3, "interrupt")
    assert re.findall(r"Ctrl-C: .*?step (\d+)", out) == ["3"], out
    assert re.findall(r"stopped: the saved state holds step (\d+) of 4", out) == ["3"], out
    assert [r["step"] for r in metrics(tmp_path / "run") if r["split"] == "train"] == [1, 2, 3]
    monkeypatch.setattr(train, "learning_rate_at", rate)
    rest = train.run(small_config(tmp_path, resume=True, **RESUMABLE))
    assert rest.status == "finished" and len(submitted) == 4
    assert metrics(rest.log_path) == metrics(uninterrupted.log_path)


@pytest.mark.slow
def test_resuming_a_finished_run_says_it_is_complete_and_writes_nothing(tmp_path, capsys):
    """Slow: a run of 2 steps, then the command it prints, with resume=True, run again."""
    config = small_config(tmp_path)
    train.run(config)
    run_dir = Path(config.log_path)
    files = {path: path.read_bytes() for path in sorted(run_dir.rglob("*")) if path.is_file()}
    capsys.readouterr()
    command = train.resume_command(config).split()
    assert command[:3] == ["python", "-m", "token_distribution_recipe.train"]
    train.main(command[3:])  # no SystemExit: exit status 0
    out = capsys.readouterr().out
    assert "already complete" in out and "done:" not in out, out
    assert {path: path.read_bytes() for path in sorted(run_dir.rglob("*")) if path.is_file()} == files


def strict_jsonl(path):
    """Each line of a JSONL file, parsed as strict JSON (no NaN, Infinity or -Infinity)."""
    def refuse(constant):
        raise ValueError(f"{path}: {constant} is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in Path(path).read_text().splitlines()]


@pytest.mark.slow
def test_an_evaluation_label_the_training_file_never_uses_is_said_in_words_and_the_logs_stay_json(
        tmp_path, monkeypatch, capsys):
    """Slow: one step. 'surprise' is in new-01's target and in none of the four training
    targets, so the training prior gives it probability 0 and its KL is infinite."""
    from token_distribution_recipe import plots

    train_file = write_examples(tmp_path / "data", shipped("train.jsonl", 4), "train-4.jsonl")
    eval_file = write_examples(tmp_path / "data", shipped("eval.jsonl", 2), "eval-2.jsonl")
    legends, close = [], plots.plt.close

    def keep_legend(fig):
        legends.extend(text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts())
        close(fig)

    monkeypatch.setattr(plots.plt, "close", keep_legend)
    result = train.run(small_config(tmp_path, train_file=str(train_file), eval_file=str(eval_file)))
    out = capsys.readouterr().out
    evals = [r for r in strict_jsonl(result.log_path / "metrics.jsonl") if r["split"] == "eval"]
    assert len(strict_jsonl(result.log_path / "eval_predictions.jsonl")) == len(evals) == 2
    assert all(r["prior_kl"] is None and "'surprise'" in r["prior_kl_note"] for r in evals)
    assert "inf" not in out.replace("infinite", "") and "training prior gives probability 0 to" in out, out
    assert not any("inf)" in text for text in legends) and any("infinite" in text for text in legends), legends


@pytest.mark.slow
def test_a_failed_step_says_how_to_resume_and_the_resumed_run_equals_an_uninterrupted_one(
        uninterrupted, tmp_path, monkeypatch):
    """Slow: two runs. The service fails step 4's request; the last state is from step 2, and
    step 3 was logged after it, so the resumed run must redo step 3, not keep it twice."""
    from tinker_offline.futures import request_failed

    class FailedRequest:
        def result(self):
            raise request_failed("the service failed this request", object)

    submit, calls = train.submit_step, []

    def failing_submit(*args):
        calls.append(1)
        forward_backward, optim = submit(*args)
        return (FailedRequest(), optim) if len(calls) == 4 else (forward_backward, optim)

    monkeypatch.setattr(train, "submit_step", failing_submit)
    with pytest.raises(train.StepFailed) as caught:
        train.run(small_config(tmp_path, **RESUMABLE))
    message = str(caught.value)
    assert "step 4 failed: RequestFailedError: Request failed: the service failed this request" in message
    assert "after 2 step(s), is tinker://" in message and "resume=True" in message
    assert [r["step"] for r in metrics(tmp_path / "run") if r["split"] == "train"] == [1, 2, 3]
    monkeypatch.setattr(train, "submit_step", submit)
    resumed = train.run(small_config(tmp_path, resume=True, **RESUMABLE))
    assert resumed.status == "finished" and resumed.steps_done == 4
    assert metrics(resumed.log_path) == metrics(uninterrupted.log_path)


@pytest.mark.slow
def test_a_finished_run_continued_with_more_epochs_equals_an_uninterrupted_run(uninterrupted, tmp_path):
    """Slow: two runs of 2 steps each. A 2-step run finishes (final state, evaluation at step
    2); resume=True with num_epochs raised continues it from that state and its optimizer to
    4 steps. With a constant rate its weights and logs equal those of the 4-step run."""
    whole = uninterrupted
    first = train.run(small_config(tmp_path, **{**RESUMABLE, "num_epochs": 1}))
    assert first.status == "finished" and first.steps_done == 2
    rest = train.run(small_config(tmp_path, resume=True, **RESUMABLE))
    assert rest.status == "finished" and rest.steps_done == whole.steps_done == 4
    assert metrics(rest.log_path) == metrics(whole.log_path)
    for name, tensor in whole.training_client.lora_state().items():
        assert torch.equal(tensor, rest.training_client.lora_state()[name]), name
    saved = [json.loads(line) for line in (rest.log_path / "checkpoints.jsonl").read_text().splitlines()]
    assert [(c["step"], c["reason"]) for c in saved] == [(2, "final"), (4, "final")]  # save_every=2: 2 is final
    record = json.loads((rest.log_path / "config.json").read_text())
    assert record["settings"]["num_epochs"] == 2  # what the next resume=True compares
    assert record["continued"] == [{"after_step": 2, "total_steps": 4, "changed": {"num_epochs": {"from": 1, "to": 2}}}]


@pytest.mark.slow
def test_max_steps_continues_a_finished_run_on_the_whole_runs_schedule(tmp_path, capsys):
    """Slow: a 1-step run, continued to 3 steps (into the second epoch) with max_steps. The
    linear schedule is defined over the 3 steps from step 2 on, and the console says so; a
    length that leaves no step to take is refused in one line."""
    config = small_config(tmp_path, max_steps=1, learning_rate=1e-3)
    train.run(config)
    capsys.readouterr()
    with pytest.raises(train.RecipeError, match=r"max_steps=1 gives a run of 1 step\(s\), but this run has taken 1"):
        train.run(small_config(tmp_path, max_steps=1, num_epochs=3, resume=True))
    longer = small_config(tmp_path, max_steps=3, learning_rate=1e-3, resume=True)
    result = train.run(longer)
    out = capsys.readouterr().out
    assert result.status == "finished" and result.steps_done == 3
    assert "steps: 2 per epoch (batch 4); max_steps = 3" in out, out
    assert "lr_schedule=linear is now defined over the 3 steps, so step 2 takes 6.67e-04" in out, out
    steps = [r for r in metrics(result.log_path) if r["split"] == "train"]
    assert [(r["step"], r["epoch"]) for r in steps] == [(1, 0), (2, 0), (3, 1)]
    assert [r["learning_rate"] for r in steps] == pytest.approx(
        [1e-3] + [train.learning_rate_at(longer, step, 3) for step in (1, 2)])


@pytest.mark.slow
def test_the_label_form_check_warns_when_another_form_holds_much_more_probability(tmp_path):
    """Slow: two forward passes of SmolLM2. After 'Emotion:' the base model puts about 14x more
    probability on ' Joy', ' Sadness', ... than on the shipped ' joy', ' sadness', ...; with the
    capitalized labels there is nothing to warn about."""
    from tinker_offline.model_store import load_tokenizer

    tokenizer = load_tokenizer(tinker_offline.DEFAULT_BASE_MODEL)
    client = tinker_offline.ServiceClient().create_lora_training_client(
        base_model=tinker_offline.DEFAULT_BASE_MODEL, rank=8).result()
    first = shipped("train.jsonl", 1)[0]
    checked = check(tokenizer, [first], tmp_path)[0]
    labels = data.read_labels(LABELS_FILE)
    lines, warning = train.label_form_check(client, tokenizer, checked.model_input, labels, " ", "labels.json")
    assert lines[0].split() == ["form", "mass", "x", "best", "tokens"] and len(lines) == 6
    assert warning and "on the spaced capitalized form (' Joy', ...)" in warning and "in labels.json" in warning
    capitalized = [label.capitalize() for label in labels]
    assert train.label_form_check(client, tokenizer, checked.model_input, capitalized, " ", "labels.json")[1] is None


@pytest.mark.slow
@pytest.mark.parametrize("route", ["kl", "cross_entropy", "kl_mass"])
def test_each_route_trains(tmp_path, route):
    """Slow: one 2-step run per route."""
    result = train.run(small_config(tmp_path, route=route, learning_rate=3e-3))
    steps = [r for r in metrics(result.log_path) if r["split"] == "train"]
    evals = [r for r in metrics(result.log_path) if r["split"] == "eval"]
    assert len(steps) == 2 and evals[-1]["eval_kl"] < evals[0]["eval_kl"]
    if route == "kl":
        assert steps[0]["loss"] == pytest.approx(steps[0]["train_kl"], rel=1e-5)
    else:  # both add -log(mass), which is positive
        assert steps[0]["loss"] > steps[0]["train_kl"]


@pytest.mark.slow
@pytest.mark.parametrize("route", ["kl", "cross_entropy"])
def test_labels_of_several_tokens_are_planned_and_trained(tmp_path, route, capsys):
    """Slow: two 2-step runs on SmolLM2, with two datums per example."""
    labels = data.read_labels(LABELS_FILE) + ["bittersweetness", "sarcasm"]  # two branches of the token tree
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps(labels))
    result = train.run(small_config(tmp_path, labels_file=str(labels_file), route=route, learning_rate=3e-3))
    printed = capsys.readouterr().out
    assert "labels: 2 of 23 are several tokens, so each example takes 2 datum(s)" in printed
    steps = [r for r in metrics(result.log_path) if r["split"] == "train"]
    evals = [r for r in metrics(result.log_path) if r["split"] == "eval"]
    assert [r["examples"] for r in steps] == [4, 4]  # examples, not datums
    assert len(evals) == 2 and evals[-1]["eval_kl"] < evals[0]["eval_kl"]
    predictions = [json.loads(line) for line in (result.log_path / "eval_predictions.jsonl").read_text().splitlines()]
    assert all(len(q) == 23 and abs(sum(q) - 1) < 1e-4 for q in predictions[-1]["q"].values())


# ------------------------------------------------- no model: a stand-in training client
class _Done:
    def __init__(self, value=None):
        self.value = value

    def result(self):
        return self.value


class _FakeClient:
    """save_state only: the steps themselves are stood in for by submit_step and step_metrics."""

    def save_state(self, name):
        return _Done(type("Saved", (), {"path": f"tinker://fake/{name}"})())


def _fake_training(tmp_path, monkeypatch, total_steps=3, **settings):
    """`train._train` on three one-example batches, without a model: each step's metrics are made up."""
    from types import SimpleNamespace

    from token_distribution_recipe import plots

    figures = []
    monkeypatch.setattr(train, "submit_step", lambda *args: (_Done(), _Done()))
    monkeypatch.setattr(train, "step_metrics", lambda data, output: {
        "train_kl": 1.0, "train_mass": 0.5, "loss": 1.0, "examples": 1})
    monkeypatch.setattr(plots.plt, "close", lambda fig: figures.append(fig))
    config = small_config(tmp_path, **settings)
    Path(config.log_path).mkdir(parents=True)
    examples = [SimpleNamespace(datums=[]) for _ in range(total_steps)]
    plan = SimpleNamespace(total_steps=total_steps)
    result = train._train(config, _FakeClient(), examples, [], ["joy"], [[[i] for i in range(total_steps)]], plan, 0, None)
    return result, figures


def test_one_step_numbering_in_metrics_console_and_plot(tmp_path, monkeypatch, capsys):
    """Each train line's step is the optimizer steps taken when it is written: 1, 2, 3 in
    metrics.jsonl, on the console and on the curves' x axis."""
    result, figures = _fake_training(tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert [r["step"] for r in metrics(result.log_path) if r["split"] == "train"] == [1, 2, 3]
    assert re.findall(r"^step +(\d+)/3", out, re.MULTILINE) == ["1", "2", "3"], out
    (figure,) = figures
    assert list(figure.axes[0].lines[0].get_xdata()) == [1, 2, 3]
    assert figure.axes[-1].get_xlabel() == "optimizer steps taken"


def test_curves_plot_the_mass_on_the_labels_in_a_second_panel(tmp_path, monkeypatch):
    _, (figure,) = _fake_training(tmp_path, monkeypatch)
    assert len(figure.axes) == 2 and "mass" in figure.axes[1].get_ylabel()
    assert list(figure.axes[1].lines[0].get_ydata()) == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("kl, uniform, prior, words", [
    (1.23, 1.10, 0.5, ["worse than the uniform baseline (1.2300 > 1.1000)", "worse than the training prior (1.2300 > 0.5000)"]),
    (0.2, 1.10, 0.5, ["better than the uniform baseline (0.2000 < 1.1000)", "better than the training prior (0.2000 < 0.5000)"]),
    (0.7, 1.10, 0.5, ["better than the uniform baseline", "worse than the training prior"]),
])
def test_the_summary_compares_the_evaluation_kl_with_both_baselines_in_words(kl, uniform, prior, words):
    text = train.baseline_words({"eval_kl": kl, "uniform_kl": uniform, "prior_kl": prior})
    assert all(w in text for w in words), text


def test_config_json_records_what_was_resolved_and_resume_compares_only_the_settings(tmp_path):
    config = small_config(tmp_path)
    record = train.config_record(config, "offline", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert record["settings"]["batch_size"] == 4 and record["settings"]["backend"] == "offline"
    resolved = record["resolved"]
    assert resolved["model_name"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and resolved["backend"] == "offline"
    assert resolved["renderer"] == "offline chunks by hand"
    assert resolved["versions"]["torch"] == torch.__version__ and resolved["versions"]["tinker"]
    assert "tinker-offline-book" in resolved["versions"]
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(record))
    train._check_resume_settings(small_config(tmp_path, resume=True), saved)  # the resolved part is not a setting
    with pytest.raises(train.RecipeError, match=r"batch_size \(4 -> 2\)"):
        train._check_resume_settings(small_config(tmp_path, resume=True, batch_size=2), saved)


def test_a_dry_run_refuses_a_log_path_that_holds_a_run_and_says_it_checked(tmp_path, capsys):
    train.run(small_config(tmp_path, dry_run=True))
    assert "holds no run, so a run may start there" in capsys.readouterr().out
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1, "split": "train"}\n')
    with pytest.raises(train.RecipeError, match="holds a run already"):
        train.run(small_config(tmp_path, dry_run=True))


# ------------------------------------------------------- warnings and the plan (tokenizer only)
def _plan_output(capsys, config):
    """What check_and_plan prints (its warnings), whether or not the checks then pass."""
    try:
        train.check_and_plan(config)
    except checks.ExampleCheckError:
        pass
    return capsys.readouterr().out


def test_whitespace_that_changes_the_tokens_is_warned_with_the_text_and_the_fix(tmp_path, capsys):
    out = _plan_output(capsys, small_config(tmp_path, prefill="Emotion: "))
    assert "warning: prefill='Emotion: ' ends with whitespace" in out and "'Emotion:  joy'" in out, out
    assert "fix: prefill='Emotion:' with label_separator=' '" in out
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps(data.read_labels(LABELS_FILE)[:-1] + ["calm "]))
    out = _plan_output(capsys, small_config(tmp_path, labels_file=str(labels_file)))
    assert "warning: the label 'calm ' starts or ends with whitespace" in out and "'Emotion: calm '" in out, out
    assert "write it as 'calm'" in out and "prefill=" not in out
    assert "with whitespace" not in _plan_output(capsys, small_config(tmp_path))  # the defaults: no warning


def test_ids_and_prompts_in_both_files_are_warned(tmp_path, capsys):
    out = _plan_output(capsys, small_config(tmp_path))  # small_config evaluates on its training file
    assert "warning: 8 id(s) are in both" in out and "train-01, train-02" in out and "train-08" in out, out
    records = shipped("train.jsonl", 2)
    for record in records:
        record["id"] = "held-out-" + record["id"]
    eval_file = write_examples(tmp_path / "data", records, "eval.jsonl")
    out = _plan_output(capsys, small_config(tmp_path, eval_file=str(eval_file)))
    assert "id(s) are in both" not in out
    assert "warning: 2 evaluation prompt(s) have the same text as a training prompt: held-out-train-01" in out, out
    eval_file = write_examples(tmp_path / "data", shipped("eval.jsonl"), "eval.jsonl")
    assert "warning" not in _plan_output(capsys, small_config(tmp_path, eval_file=str(eval_file)))


def test_a_long_list_of_failures_names_every_example_or_the_file_that_lists_them(tokenizer, tmp_path):
    records = shipped("train.jsonl", 8)
    for record in records[:7]:
        record["target"] = {"joy": 0.5}
    with pytest.raises(checks.ExampleCheckError) as caught:  # no log_path: every one named
        check(tokenizer, records, tmp_path)
    assert "more" not in str(caught.value) and all(f"train-0{i}" in str(caught.value) for i in range(1, 8))
    for log_path, listed in ((tmp_path / "run", tmp_path / "run" / "check_failures.txt"),
                             (tmp_path / "a-file", tmp_path / "a-file.check_failures.txt")):
        (tmp_path / "a-file").write_text("not a directory")
        train_file = write_examples(tmp_path / "data", records, "mine.jsonl")  # small_config writes train.jsonl
        with pytest.raises(checks.ExampleCheckError) as caught:
            train.check_and_plan(small_config(tmp_path, train_file=str(train_file), eval_file=str(train_file),
                                              log_path=str(log_path)))
        message = str(caught.value)
        assert f"and 9 more, every one listed in {listed}" in message, message  # 7 in each of the two files
        assert all(f"train-0{i}" in listed.read_text() for i in range(1, 8))


def test_the_target_tolerance_is_stated_and_normalize_targets_says_what_it_changed(tokenizer, tmp_path, capsys):
    records = shipped("train.jsonl", 8)
    records[1]["target"] = {"joy": 0.5, "calm": 0.502}
    with pytest.raises(checks.ExampleCheckError, match=r"sums to 1\.0020, not 1 within 0\.001"):
        check(tokenizer, records, tmp_path)
    records[2]["target"] = {"joy": 0.5, "calm": 0.3}
    train_file = write_examples(tmp_path / "data", records, "mine.jsonl")  # small_config writes train.jsonl
    _, _, labels, checked, _, _, _ = train.check_and_plan(
        small_config(tmp_path, train_file=str(train_file), eval_file=None, normalize_targets=True))
    out = capsys.readouterr().out
    assert f"normalize_targets=True: divided each target by its sum; {train_file}: 2 of 8 target(s) changed" in out, out
    assert checked[2].example.target == pytest.approx({"joy": 0.625, "calm": 0.375})
    with pytest.raises(checks.ExampleCheckError):
        train.check_and_plan(small_config(tmp_path, train_file=str(train_file), eval_file=None))  # the default: refused


def test_the_plan_counts_images_and_positions_for_both_files(tmp_path, capsys):
    eval_file = write_examples(tmp_path / "data", shipped("eval.jsonl"), "eval.jsonl")
    *_, plan = train.check_and_plan(small_config(tmp_path, eval_file=str(eval_file)))
    lines = plan.lines("Emotion:", 0)
    t_line = next(line for line in lines if line.startswith("T per example"))
    image_line = next(line for line in lines if line.startswith("images:"))
    assert f"evaluation min {plan.eval_lengths.min():,}" in t_line and "training min" in t_line, t_line
    with_images = int((plan.eval_image_positions > 0).sum())
    assert f"evaluation {with_images} of {len(plan.eval_lengths)} example(s) with images" in image_line, image_line
    assert image_line.count("image positions per example") == 2


@pytest.mark.slow
def test_the_labels_sub_command_shows_each_labels_tokens_and_the_forms_probabilities(tmp_path, capsys):
    """Slow: one forward pass of SmolLM2 on the first training example."""
    train_file = write_examples(tmp_path / "data", shipped("train.jsonl", 2), "train.jsonl")
    assert train.main(["labels", f"labels_file={LABELS_FILE}", f"train_file={train_file}", "backend=offline"]) is None
    out = capsys.readouterr().out
    assert "each label's tokens:" in out and "'joy': ['Ġjoy']" in out, out
    assert "the base model's probability on each form" in out and "yours (sep ' ')" in out
    assert "WARNING: the base model puts" in out and "spaced capitalized form (' Joy', ...)" in out
    assert not (tmp_path / "run").exists() and not Path("offline_states").exists()


def test_help_and_the_readme_document_the_exit_codes(capsys):
    train.main(["--help"])
    out = capsys.readouterr().out
    readme = (REPO / "README.md").read_text().split("## Train on your own data (the recipe)")[1].split("\n## ")[0]
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^ +{code} +\S", out, re.MULTILINE) and f"`{code}`" in readme, code
    for text in (out, readme):
        assert "exit status" in text.lower() and "Ctrl-C" in text and "nothing to do" in text
