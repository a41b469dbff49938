"""Train a model's distribution over a fixed set of label tokens, on your JSONL file.

    python -m token_distribution_recipe.train train_file=my.jsonl labels_file=labels.json \\
        eval_file=my_eval.jsonl log_path=runs/first --dry-run

Settings are ``key=value`` (tinker-cookbook's ``chz`` style; ``--dry-run`` means
``dry_run=True``, and any other flag is refused with its ``key=value`` spelling); ``Config``
lists them. On Tinker when ``TINKER_API_KEY`` is set (or
``backend=tinker``), else offline with ``tinker_offline``; apart from the service client,
the tokenizer and the prompt builder (``prompts``), the code is the same.

What a run writes to ``log_path``: ``config.json`` (the settings as given, and what they
resolved to: backend, model, renderer, versions), ``metrics.jsonl`` (one line per step and per
evaluation; ``step`` counts the optimizer steps taken when the line is written),
``checkpoints.jsonl`` (each saved state's path and step), ``eval_predictions.jsonl`` (each
evaluation's distribution per example), ``curves.png`` and ``before_after.png``; offline, the
saved states themselves in ``offline_states/`` (on Tinker they stay on Tinker's side); and
``check_failures.txt`` when the checks fail on more examples than the message names.

Exit status (``main``): 0 done or nothing to do, 1 a failed step, 2 a settings or data error,
130 Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import chz
import numpy as np

from token_set import baseline_kls, evaluate_label_sequences, target_vector

from . import plots
from .checks import SHOWN, ExampleCheckError, LabelSetError, check_examples, normalize_targets, problem_list
from .data import DataFileError, read_examples, read_labels
from .plan import make_plan
from .prompts import prompt_builder
from .routes import step_metrics, submit_step

DEFAULT_MODELS = {"tinker": "Qwen/Qwen3-VL-30B-A3B-Instruct", "offline": "HuggingFaceTB/SmolLM2-135M-Instruct"}


@chz.chz
class Config:
    """Every setting of a run; ``python -m token_distribution_recipe.train --help`` lists them."""

    train_file: str = chz.field(doc="JSONL, one example per line (data.FORMAT)")
    labels_file: str = chz.field(doc="JSON list of the label words")
    log_path: str = chz.field(doc="where metrics, checkpoints and plots go")
    eval_file: str | None = chz.field(default=None, doc="JSONL in the same format, never trained on")
    prefill: str = chz.field(default="Emotion:", doc="the text after the generation prompt that precedes the label")
    label_separator: Literal[" ", ""] = chz.field(default=" ", doc="what comes between the prefill and each label word")
    label_end: str = chz.field(default="", doc="text scored after each label, e.g. the end-of-turn token; needed when one label's tokens begin another's")
    backend: Literal["auto", "tinker", "offline"] = chz.field(default="auto", doc="auto: tinker if TINKER_API_KEY is set")
    model_name: str | None = chz.field(default=None, doc="default: Qwen/Qwen3-VL-30B-A3B-Instruct on Tinker, SmolLM2-135M-Instruct offline")
    renderer_name: str = chz.field(default="qwen3_vl_instruct", doc="tinker-cookbook renderer (Tinker only)")
    base_url: str | None = chz.field(default=None, doc="another Tinker endpoint")
    lora_rank: int = chz.field(default=32, doc="LoRA rank")
    learning_rate: float = chz.field(default=5e-4, doc="Adam's peak learning rate")
    lr_schedule: Literal["constant", "linear", "cosine"] = chz.field(default="linear", doc="decay from the peak to 0 over the run")
    batch_size: int = chz.field(default=8, doc="examples per step")
    num_epochs: int = chz.field(default=3, doc="passes over the training file")
    max_steps: int | None = chz.field(default=None, doc="optimizer steps in all, overriding num_epochs (later epochs keep "
                                      "their own order); raise it, or num_epochs, with resume=True to continue a run")
    route: Literal["kl", "cross_entropy", "kl_mass"] = chz.field(default="kl", doc="kl: the KL callable; cross_entropy: the built-in loss, target as weights; kl_mass: KL - mass_weight * log(mass)")
    mass_weight: float = chz.field(default=0.1, doc="route kl_mass only")
    normalize_targets: bool = chz.field(default=False, doc="divide every target by its sum (prints how many it changed); "
                                        "otherwise a target must sum to 1 within 0.001")
    max_length: int = chz.field(default=8192, doc="refuse examples longer than this many positions")
    eval_every: int = chz.field(default=5, doc="steps between evaluations (0: only before and after)")
    save_every: int = chz.field(default=10, doc="steps between saved states (0: only at the end)")
    seed: int = chz.field(default=0, doc="the LoRA initialization and the order of each epoch")
    resume: bool = chz.field(default=False, doc="continue from log_path's last saved state")
    dry_run: bool = chz.field(default=False, doc="check and plan, then stop; nothing is sent")
    plot_examples: int = chz.field(default=3, doc="evaluation examples in before_after.png")
    progress: Literal["auto", "bar", "lines"] = chz.field(default="auto", doc="auto: a bar on a terminal, else lines")


class RecipeError(Exception):
    """A run that stops with a message for the user (exit status 2; 1 for a failed step)."""


class StepFailed(RecipeError):
    pass


@dataclasses.dataclass
class RunResult:
    status: str  # "dry-run", "finished", "interrupted" or "complete" (resumed, but it had finished)
    steps_done: int
    log_path: Path
    training_client: object = None
    checkpoint: dict | None = None


# --------------------------------------------------------------------------- set-up
def _backend(config):
    if config.backend != "auto":
        return config.backend
    return "tinker" if os.environ.get("TINKER_API_KEY") else "offline"


def _check_settings(config):
    positive = {"batch_size": config.batch_size, "num_epochs": config.num_epochs, "lora_rank": config.lora_rank,
                "max_length": config.max_length}
    wrong = [f"{name}={value}" for name, value in positive.items() if value < 1]
    wrong += [f"{name}={value}" for name, value in (("eval_every", config.eval_every), ("save_every", config.save_every))
              if value < 0]
    if config.max_steps is not None and config.max_steps < 1:
        wrong.append(f"max_steps={config.max_steps}")
    if not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
        wrong.append(f"learning_rate={config.learning_rate}")
    if not math.isfinite(config.mass_weight):
        wrong.append(f"mass_weight={config.mass_weight}")
    if wrong:
        raise RecipeError(f"settings out of range: {', '.join(wrong)}; counts must be >= 1 "
                          "(eval_every and save_every >= 0), learning_rate > 0 and mass_weight finite")


def _tokenizer(backend, model_name):
    if backend == "tinker":
        from tinker_cookbook.tokenizer_utils import get_tokenizer

        return get_tokenizer(model_name)
    from tinker_offline.model_store import load_tokenizer

    return load_tokenizer(model_name)


def _service_client(backend, config, log_path):
    if backend == "tinker":
        import tinker

        return tinker.ServiceClient(base_url=config.base_url) if config.base_url else tinker.ServiceClient()
    import tinker_offline

    return tinker_offline.ServiceClient(state_dir=log_path / "offline_states")  # saved states stay with the run


def epoch_batches(count, batch_size, seed, epoch):
    """One epoch's batches: a permutation fixed by (seed, epoch), cut into batch_size pieces."""
    order = np.random.default_rng([seed, epoch]).permutation(count).tolist()
    return [order[i:i + batch_size] for i in range(0, count, batch_size)]


def learning_rate_at(config, step, total_steps):
    fraction = step / total_steps
    factor = {"constant": 1.0, "linear": 1 - fraction, "cosine": 0.5 * (1 + math.cos(math.pi * fraction))}
    return config.learning_rate * factor[config.lr_schedule]


# ------------------------------------------------------------------------ log files
def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _dumps(record, **options):
    """Strict JSON: a NaN or an infinity raises here instead of being written as a token
    (``Infinity``) that strict parsers refuse."""
    return json.dumps(record, allow_nan=False, **options)


def _append_jsonl(path, record):
    with path.open("a") as file:
        file.write(_dumps(record) + "\n")


def _keep_until(path, keep):
    """Rewrite a JSONL log with only the records `keep` accepts (what a resumed run redoes goes)."""
    if path.exists():
        path.write_text("".join(_dumps(r) + "\n" for r in _read_jsonl(path) if keep(r)))


def resume_command(config):
    """The command that continues this run from its last saved state."""
    fields = chz.chz_fields(config)
    settings = [f"{name}={getattr(config, name)!s}" for name, field in fields.items()
                if name not in ("resume", "dry_run") and getattr(config, name) != field._default]
    return "python -m token_distribution_recipe.train " + " ".join(settings) + " resume=True"


# ------------------------------------------------------------------------ evaluation
class Evaluator:
    """Evaluation with `forward`: KL, mass on the labels, top-label agreement, and the two
    baselines (uniform, and the mean of the training targets), as chapter 3 measures them.

    When the training prior gives probability 0 to a label an evaluation target uses, its KL
    is infinite: the record holds ``"prior_kl": null`` and ``prior_kl_note`` says why."""

    def __init__(self, checked, train_checked, labels):
        self.checked = checked
        self.targets = np.array([target_vector(c.example.target, labels) for c in checked])
        training_targets = np.array([target_vector(c.example.target, labels) for c in train_checked])
        baselines = baseline_kls(self.targets, training_targets)
        self.uniform_kl = float(baselines["uniform"].mean())
        self.prior_kl = float(baselines["training prior"].mean())
        self.prior_note = None
        if not math.isfinite(self.prior_kl):
            prior = training_targets.mean(axis=0)
            unseen = [label for label, seen, used in zip(labels, prior, self.targets.max(axis=0)) if seen == 0 and used > 0]
            self.prior_kl = None
            self.prior_note = (f"the training prior gives probability 0 to {unseen}, which the evaluation uses and no "
                               "training target does, so its KL is infinite")

    def __call__(self, training_client, step):
        measured = evaluate_label_sequences(training_client, [d for c in self.checked for d in c.datums])
        record = {"step": step, "split": "eval", "eval_kl": float(measured["kl"].mean()),
                  "eval_mass": float(measured["mass"].mean()), "eval_top_agreement": float(measured["top_agrees"].mean()),
                  "uniform_kl": self.uniform_kl, "prior_kl": self.prior_kl}
        if self.prior_note:
            record["prior_kl_note"] = self.prior_note
        predictions = {"step": step, "q": {c.example.id: q.round(6).tolist() for c, q in zip(self.checked, measured["q"])}}
        return record, predictions


# ----------------------------------------------------------------------- Ctrl-C
class StopRequest:
    """The first Ctrl-C stops the loop from submitting another step: the steps already
    submitted finish (the loop submits a step before it waits on the one before), the state
    after them is saved, and the message names that step. A second Ctrl-C stops at once,
    without saving.

    The loop calls ``may_submit(n)`` just before it submits its n-th step. The handler takes
    the last n announced as the step to stop after, so whichever bytecode the signal lands
    on, the message and the loop agree."""

    def __init__(self, steps_done=0):
        self.requested = False
        self.announced = steps_done  # the steps submitted, or about to be
        self.stop_after = None  # set by the first Ctrl-C: the last step that will run
        self._previous = None

    def may_submit(self, step_number):
        """Whether step `step_number` (counting from 1) may be submitted: not after a Ctrl-C."""
        self.announced = step_number
        return not (self.requested and self.stop_after < step_number)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.stop_after = self.announced
        self.requested = True
        which = f"after step {self.stop_after}; the state after it" if self.stop_after else "; the state before step 1"
        print(f"\nCtrl-C: no step is submitted {which} is saved (Ctrl-C again quits without saving)", flush=True)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ------------------------------------------------------------------------- progress
class Progress:
    """A tqdm bar with the loss on a terminal; one line per step otherwise (logs, notebooks)."""

    def __init__(self, mode, total, initial):
        self.total = total
        self.bar = None
        if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def step(self, record):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{record['loss']:.4f}", kl=f"{record['train_kl']:.4f}")
        else:
            print(f"step {record['step']:>4}/{self.total}  epoch {record['epoch'] + 1}  "
                  f"lr {record['learning_rate']:.2e}  loss {record['loss']:.4f}  KL {record['train_kl']:.4f}  "
                  f"mass {record['train_mass']:.3f}  {record['seconds']:.1f} s", flush=True)

    def note(self, text):
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _prior_text(record):
    """The training-prior baseline of an evaluation record, in words when it is infinite."""
    if record["prior_kl"] is None:
        return record["prior_kl_note"]
    return f"training prior {record['prior_kl']:.4f}"


def _eval_line(record):
    return (f"eval after {record['step']} step(s): KL {record['eval_kl']:.4f} (uniform {record['uniform_kl']:.4f}, "
            f"{_prior_text(record)}), mass {record['eval_mass']:.3f}, "
            f"top label agrees {record['eval_top_agreement']:.0%}")


# ------------------------------------------------------------------------------ run
SETTINGS_THAT_MAY_CHANGE_ON_RESUME = ("resume", "dry_run", "progress", "plot_examples", "base_url")
#: The run's length: resume=True with another value continues the run to the new length.
LENGTH_SETTINGS = ("num_epochs", "max_steps")


def _user_settings(config):
    """The settings as given (Config's fields); what resume=True compares."""
    return {name: getattr(config, name) for name in chz.chz_fields(config)}


def _version(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None  # not installed (token_set used from a checkout without `pip install -e .`)


def config_record(config, backend, model_name):
    """What config.json holds: ``settings``, the settings as given (resume compares only
    these), and ``resolved``, what the run used: the backend, the model, the renderer and
    the versions of tinker, token_set's package (tinker-offline-book) and torch."""
    import torch

    return {"settings": _user_settings(config), "resolved": {
        "backend": backend, "model_name": model_name,
        "renderer": config.renderer_name if backend == "tinker" else "offline chunks by hand",
        "versions": {"tinker": _version("tinker"), "tinker-offline-book": _version("tinker-offline-book"),
                     "torch": torch.__version__}}}


def _saved_settings(saved_path):
    saved = json.loads(saved_path.read_text())
    # a config.json from before "resolved" holds the settings only
    return saved["settings"] if isinstance(saved.get("settings"), dict) else saved


def _check_resume_settings(config, saved_path):
    """Refuse changed settings, except those that may change; return the changed length
    settings (LENGTH_SETTINGS) as {name: (saved, now)}."""
    saved = _saved_settings(saved_path)
    now = _user_settings(config)
    changed = [f"{name} ({saved.get(name)!r} -> {value!r})" for name, value in now.items()
               if name not in SETTINGS_THAT_MAY_CHANGE_ON_RESUME + LENGTH_SETTINGS and saved.get(name) != value]
    if changed:
        raise RecipeError(f"resume=True needs the settings the run started with ({saved_path}); changed: "
                          + ", ".join(changed) + " (only num_epochs and max_steps may change: they continue the run)")
    return {name: (saved.get(name), now[name]) for name in LENGTH_SETTINGS if saved.get(name) != now[name]}


def _record_continuation(config_path, config, lengthened, start, total):
    """config.json after resume=True changed the run's length: the settings as now given, and
    under ``continued`` when, and to what, the run was lengthened."""
    record = json.loads(config_path.read_text())
    if not isinstance(record.get("settings"), dict):
        record = {"settings": record}
    record["settings"] = _user_settings(config)
    record.setdefault("continued", []).append(
        {"after_step": start, "total_steps": total,
         "changed": {name: {"from": old, "to": new} for name, (old, new) in lengthened.items()}})
    config_path.write_text(_dumps(record, indent=1))


def continuation_words(config, start, total):
    """What resume=True with a new length says about the learning rate: the schedule is
    defined over the whole run as it now is, from the first step not yet taken."""
    words = f"continuing the run from step {start} to {total} steps"
    if config.lr_schedule == "constant":
        return words + " (lr_schedule=constant: it ends as an uninterrupted run of that length would)"
    return (words + f"; lr_schedule={config.lr_schedule} is now defined over the {total} steps, so step {start + 1} "
            f"takes {learning_rate_at(config, start, total):.2e} as an uninterrupted {total}-step run would, while "
            f"steps 1-{start} took the rates of the shorter run (metrics.jsonl lists them); with "
            "lr_schedule=constant a continued run equals an uninterrupted one")


def whitespace_warnings(tokenizer, prefill, separator, labels):
    """Warnings (lines of text) for whitespace at the prefill's end or a label's edges that
    changes the tokens: the text the model is trained on, and the fix."""
    def tokens(text):
        return tokenizer.encode(text, add_special_tokens=False)

    warnings = []
    bare_prefill = prefill.rstrip()
    if bare_prefill != prefill:
        spaced = separator or " "
        changed = [label for label in labels
                   if tokens(prefill + separator + label) != tokens(bare_prefill + spaced + label.strip())]
        if changed:
            word = changed[0]
            warnings.append(
                f"warning: prefill={prefill!r} ends with whitespace and label_separator={separator!r} follows it, so "
                f"the text becomes {prefill + separator + word!r}, tokenized {tokenizer.convert_ids_to_tokens(tokens(prefill + separator + word))}; "
                f"fix: prefill={bare_prefill!r} with label_separator={spaced!r} gives {bare_prefill + spaced + word!r}")
    for label in labels:
        if label != label.strip():
            text = bare_prefill + (separator or "") + label
            if tokens(text) != tokens(bare_prefill + (separator or "") + label.strip()):
                warnings.append(f"warning: the label {label!r} starts or ends with whitespace, so the text becomes "
                                f"{text!r}; fix: write it as {label.strip()!r} in labels_file (label_separator "
                                "puts the space before it)")
    return warnings


def overlap_warnings(train_examples, eval_examples, train_file, eval_file):
    """Warnings for ids, and prompts (the same messages) under another id, that are in both files:
    the evaluation is then partly on examples the run trains on."""
    def prompt(example):
        return json.dumps(example.messages, sort_keys=True)

    warnings = []
    train_ids = {e.id for e in train_examples}
    same_ids = [e.id for e in eval_examples if e.id in train_ids]
    if same_ids:
        warnings.append(f"warning: {len(same_ids)} id(s) are in both {train_file} and {eval_file}: "
                        f"{', '.join(same_ids)}; the evaluation should hold examples the run never trains on")
    train_prompts = {prompt(e): e for e in train_examples}
    same_prompts = [f"{e.id} ({e.source}) = {train_prompts[prompt(e)].id} ({train_prompts[prompt(e)].source})"
                    for e in eval_examples if prompt(e) in train_prompts and train_prompts[prompt(e)].id != e.id]
    if same_prompts:
        warnings.append(f"warning: {len(same_prompts)} evaluation prompt(s) have the same text as a training prompt: "
                        f"{', '.join(same_prompts)}; the evaluation should hold prompts the run never trains on")
    return warnings


def _long_report(problems):
    """Whether some kind of failure hits more examples than a message names."""
    counts = {}
    for problem in problems:
        counts[(problem.what, problem.fix)] = counts.get((problem.what, problem.fix), 0) + 1
    return max(counts.values(), default=0) > SHOWN


def _write_problem_list(log_path, problems):
    """Every failing example, written to log_path/check_failures.txt, or next to log_path when it
    cannot be written; the path, or None when neither can (the message then names them all)."""
    for path in (log_path / "check_failures.txt", log_path.parent / f"{log_path.name}.check_failures.txt"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(problem_list(problems))
            return path
        except OSError:
            continue
    return None


def check_and_plan(config):
    """Read and check both files and make the plan; sends nothing. Returns what `run` needs."""
    _check_settings(config)
    backend = _backend(config)
    model_name = config.model_name or DEFAULT_MODELS[backend]
    labels = read_labels(config.labels_file)
    files = [(config.train_file, read_examples(config.train_file))]
    if config.eval_file:
        files.append((config.eval_file, read_examples(config.eval_file)))
    if config.normalize_targets:  # explicit, and said: never silent
        normalized = [(path, *normalize_targets(examples)) for path, examples in files]
        files = [(path, examples) for path, examples, _ in normalized]
        print("normalize_targets=True: divided each target by its sum; "
              + "; ".join(f"{path}: {changed} of {len(examples)} target(s) changed" for path, examples, changed in normalized))
    tokenizer = _tokenizer(backend, model_name)
    warnings = whitespace_warnings(tokenizer, config.prefill, config.label_separator, labels)
    if len(files) > 1:
        warnings += overlap_warnings(files[0][1], files[1][1], config.train_file, config.eval_file)
    for warning in warnings:  # printed, not raised: the run goes on
        print(warning, flush=True)
    builder = prompt_builder(backend, model_name, config.renderer_name, tokenizer)
    checked, problems, label_sets = [], [], []
    for path, examples in files:  # every file checked before any failure is reported
        try:
            checked.append(check_examples(examples, labels, builder, tokenizer, config.prefill,
                                          config.label_separator, Path(path).parent, config.max_length,
                                          config.labels_file, config.label_end))
        except ExampleCheckError as error:
            problems += error.problems
            label_sets += [error.label_set] if error.label_set else []
    if problems or label_sets:
        label_set = None
        if label_sets:  # one report for the labels file, whichever data file showed the ending
            label_set = LabelSetError(config.labels_file, {k: v for error in label_sets for k, v in error.failures.items()})
        count = sum(len(examples) for _, examples in files)
        listed_in = None
        if _long_report(problems):
            listed_in = _write_problem_list(Path(config.log_path), problems)
        raise ExampleCheckError(problems, count, label_set, listed_in)
    train, evaluation = checked[0], (checked[1] if len(checked) > 1 else [])
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    epochs = config.num_epochs if config.max_steps is None else math.ceil(config.max_steps / steps_per_epoch)
    batches = [epoch_batches(len(train), config.batch_size, config.seed, e) for e in range(epochs)]
    plan = make_plan(train, evaluation, labels, batches[0], epochs, config.route, config.max_steps)
    return backend, model_name, labels, train, evaluation, batches, plan


def _log_path_words(config, checkpoints):
    """What a dry run says about log_path, checked as the real run checks it."""
    if config.resume:
        return (f"{config.log_path} holds a run; resume=True continues it from its saved state after "
                f"{checkpoints[-1]['step']} step(s) (checked as a real run checks it)")
    return f"{config.log_path} holds no run, so a run may start there (checked as a real run checks it)"


def run(config):
    """Check, plan, and (unless dry_run) train; see the module's docstring."""
    log_path = Path(config.log_path)
    metrics_path, checkpoints_path = log_path / "metrics.jsonl", log_path / "checkpoints.jsonl"
    predictions_path, config_path = log_path / "eval_predictions.jsonl", log_path / "config.json"
    checkpoints = _read_jsonl(checkpoints_path)
    if config.resume and not checkpoints:
        raise RecipeError(f"resume=True, but {checkpoints_path} lists no saved state; start without resume=True")
    lengthened = {}
    if config.resume:
        lengthened = _check_resume_settings(config, config_path)
        if checkpoints[-1]["reason"] == "final" and not lengthened:  # nothing to do: no evaluation, state or log line
            print(f"{log_path} holds a finished run ({checkpoints[-1]['step']} steps, final state "
                  f"{checkpoints[-1]['path']}); it is already complete, so nothing was done")
            return RunResult("complete", checkpoints[-1]["step"], log_path, checkpoint=checkpoints[-1])
    elif metrics_path.exists() or checkpoints:  # a dry run checks this too, as the real run would
        raise RecipeError(f"{log_path} holds a run already; continue it with resume=True, or choose another log_path")

    backend, model_name, labels, train, evaluation, batches, plan = check_and_plan(config)
    if config.resume:
        _check_length(config, checkpoints[-1], plan.total_steps)
    print(f"backend: {backend}; model: {model_name}; renderer: "
          f"{config.renderer_name if backend == 'tinker' else 'chat template by hand (offline)'}")
    print("\n".join(plan.lines(config.prefill, config.eval_every)), flush=True)
    if config.dry_run:
        print(f"log_path: {_log_path_words(config, checkpoints)}")
        if lengthened:
            print(continuation_words(config, checkpoints[-1]["step"], plan.total_steps))
        print("dry run: checked and planned; nothing was sent")
        return RunResult("dry-run", 0, log_path)

    log_path.mkdir(parents=True, exist_ok=True)
    service_client = _service_client(backend, config, log_path)
    if config.resume:
        last_checkpoint = checkpoints[-1]
        start = last_checkpoint["step"]
        training_client = service_client.create_training_client_from_state_with_optimizer(last_checkpoint["path"]).result()
        # What the interrupted run logged after its last saved state is redone, so it goes.
        _keep_until(metrics_path, lambda r: r["step"] <= start)
        _keep_until(predictions_path, lambda r: r["step"] <= start)
        print(f"resuming at step {start} from {last_checkpoint['path']}", flush=True)
        if lengthened:
            _record_continuation(config_path, config, lengthened, start, plan.total_steps)
            print(continuation_words(config, start, plan.total_steps), flush=True)
    else:
        last_checkpoint, start = None, 0
        config_path.write_text(_dumps(config_record(config, backend, model_name), indent=1))
        training_client = service_client.create_lora_training_client(
            base_model=model_name, rank=config.lora_rank, seed=config.seed).result()
        # Before the first step the client is the base model: one forward pass checks which
        # written form of the labels it puts its probability on (a warning, never a refusal).
        form_lines, warning = label_form_check(training_client, _tokenizer(backend, model_name), train[0].model_input,
                                               labels, config.label_separator, config.labels_file)
        print("label forms, base model at the first training example's ending (first tokens):\n  "
              + "\n  ".join(form_lines) + (f"\n{warning}" if warning else ""), flush=True)
    return _train(config, training_client, train, evaluation, labels, batches, plan, start, last_checkpoint)


def _check_length(config, last_checkpoint, total):
    """resume=True: the run's length (max_steps, else num_epochs) must leave a step to take."""
    done = last_checkpoint["step"]
    if total > done:
        return
    said = f"max_steps={config.max_steps}" if config.max_steps is not None else f"num_epochs={config.num_epochs}"
    if last_checkpoint["reason"] == "final":
        raise RecipeError(f"{said} gives a run of {total} step(s), but this run has taken {done} already; "
                          f"to continue it, give more steps, e.g. max_steps={done + 1} or more")
    raise RecipeError(f"{said} gives a run of {total} step(s), but the saved state is after {done}; "
                      f"resume with a length of more than {done} steps")


def _train(config, training_client, train, evaluation, labels, batches, plan, start, last_checkpoint):
    log_path = Path(config.log_path)
    metrics_path, checkpoints_path = log_path / "metrics.jsonl", log_path / "checkpoints.jsonl"
    predictions_path = log_path / "eval_predictions.jsonl"
    total = plan.total_steps
    schedule = [(epoch, batch) for epoch, epoch_batches_ in enumerate(batches) for batch in epoch_batches_]
    evaluator = Evaluator(evaluation, train, labels) if evaluation else None
    progress = Progress(config.progress, total, start)

    def evaluate(step):
        record, predictions = evaluator(training_client, step)
        _append_jsonl(metrics_path, record)
        _append_jsonl(predictions_path, predictions)
        progress.note(_eval_line(record))

    def save(step, reason):
        path = training_client.save_state(f"step-{step:06d}").result().path
        record = {"step": step, "path": path, "reason": reason}
        _append_jsonl(checkpoints_path, record)
        progress.note(f"saved state after {step} step(s): {path}")
        return record

    def finish(submitted):
        """Wait for a submitted step and log it; returns the number of steps done."""
        step, epoch, data, learning_rate, submit_seconds, forward_backward, optim = submitted
        working_on[0] = step
        waited_from = time.perf_counter()
        output = forward_backward.result()
        optim.result()
        # A step's time: its submission (offline the engine computes there) plus the wait for it.
        seconds = submit_seconds + time.perf_counter() - waited_from
        # "step": the optimizer steps taken when the line is written (this one included), as in
        # the evaluation records, the console and the plots' x axis
        record = {"step": step + 1, "split": "train", "epoch": epoch, "learning_rate": learning_rate,
                  **step_metrics(data, output), "seconds": seconds}
        _append_jsonl(metrics_path, record)
        progress.step(record)
        return step + 1

    done, pending, working_on = start, None, [start]  # working_on: the step a failure belongs to
    try:
        with StopRequest(start) as stop:
            if evaluator is not None and start == 0:
                evaluate(0)
            for step in range(start, total):
                epoch, batch = schedule[step]
                data = [datum for i in batch for datum in train[i].datums]
                learning_rate = learning_rate_at(config, step, total)
                if not stop.may_submit(step + 1):  # Ctrl-C: no step is submitted after it
                    break
                # The next step is submitted before the current one is waited on.
                working_on[0] = step
                submitted_from = time.perf_counter()
                futures = submit_step(training_client, data, config.route, learning_rate, config.mass_weight)
                submitted = (step, epoch, data, learning_rate, time.perf_counter() - submitted_from, *futures)
                if pending is not None:
                    done = finish(pending)
                pending = submitted
                at_eval = evaluator is not None and config.eval_every and (step + 1) % config.eval_every == 0
                at_save = config.save_every and (step + 1) % config.save_every == 0
                if at_eval or at_save or step + 1 == total:
                    done, pending = finish(pending), None
                    if at_eval and done < total:
                        evaluate(done)
                    if at_save and done < total:
                        last_checkpoint = save(done, "save_every")
            if pending is not None:  # Ctrl-C: the step in flight finishes before the state is saved
                done, pending = finish(pending), None
            if stop.requested and done < total:
                if last_checkpoint is None or last_checkpoint["step"] != done:
                    last_checkpoint = save(done, "interrupt")
                progress.close()
                print(f"stopped: the saved state holds step {done} of {total} ({last_checkpoint['path']}); "
                      f"resume with:\n  {resume_command(config)}")
                return RunResult("interrupted", done, log_path, training_client, last_checkpoint)
    except Exception as error:  # noqa: BLE001 - every failure gets the same way back
        progress.close()
        if last_checkpoint is None:
            way_back = "No state was saved before it (save_every sets how often); run the command again."
        else:
            way_back = (f"The last saved state, after {last_checkpoint['step']} step(s), is {last_checkpoint['path']}; "
                        f"continue from it with:\n  {resume_command(config)}")
        raise StepFailed(
            f"step {working_on[0] + 1} failed: {type(error).__name__}: {error}\n"
            "A failure inside forward_backward_custom poisons the TrainingClient, so this run stops here. "
            + way_back) from error
    finally:
        progress.close()

    if evaluator is not None:
        evaluate(done)
    last_checkpoint = save(done, "final")
    _write_plots(log_path, labels, evaluation, config.plot_examples)
    _print_summary(log_path, total)
    return RunResult("finished", done, log_path, training_client, last_checkpoint)


def _write_plots(log_path, labels, evaluation, count):
    records = _read_jsonl(log_path / "metrics.jsonl")
    train_records = [r for r in records if r["split"] == "train"]
    eval_records = [r for r in records if r["split"] == "eval"]
    plots.plot_curves(train_records, eval_records, log_path / "curves.png")
    predictions = _read_jsonl(log_path / "eval_predictions.jsonl")
    if len(predictions) >= 2 and count:
        shown = evaluation[:count]
        ids = [c.example.id for c in shown]
        plots.plot_before_after(labels, ids, [target_vector(c.example.target, labels) for c in shown],
                                [predictions[0]["q"][i] for i in ids], [predictions[-1]["q"][i] for i in ids],
                                log_path / "before_after.png")


def _compared(kl, baseline, name):
    """The evaluation KL against one baseline, in words: "worse than the uniform baseline (1.23 > 1.10)"."""
    if kl < baseline:
        return f"better than the {name} ({kl:.4f} < {baseline:.4f})"
    if kl > baseline:
        return f"worse than the {name} ({kl:.4f} > {baseline:.4f})"
    return f"equal to the {name} ({kl:.4f})"


def baseline_words(record):
    """An evaluation record's KL against both baselines, in words (lower KL is better)."""
    uniform = _compared(record["eval_kl"], record["uniform_kl"], "uniform baseline")
    if record["prior_kl"] is None:
        prior = f"better than the training prior, whose KL is infinite ({record['prior_kl_note']})"
    else:
        prior = _compared(record["eval_kl"], record["prior_kl"], "training prior")
    return f"the evaluation KL after training is {uniform} and {prior}"


def _print_summary(log_path, total):
    records = _read_jsonl(log_path / "metrics.jsonl")
    train_records = [r for r in records if r["split"] == "train"]
    eval_records = [r for r in records if r["split"] == "eval"]
    seconds = np.mean([r["seconds"] for r in train_records])
    print(f"done: {total} steps, {seconds:.1f} s per step; training batch KL {train_records[0]['train_kl']:.4f} "
          f"(step 1) -> {train_records[-1]['train_kl']:.4f} (step {total})")
    if eval_records:
        first, last = eval_records[0], eval_records[-1]
        print(f"evaluation KL {first['eval_kl']:.4f} -> {last['eval_kl']:.4f} (uniform {last['uniform_kl']:.4f}, "
              f"{_prior_text(last)}); mass {first['eval_mass']:.3f} -> {last['eval_mass']:.3f}; "
              f"top label agrees {first['eval_top_agreement']:.0%} -> {last['eval_top_agreement']:.0%}")
        print(baseline_words(last) + " (lower is better)")
    print(f"wrote {log_path / 'metrics.jsonl'}, {log_path / 'curves.png'}"
          + (f", {log_path / 'before_after.png'}" if (log_path / "before_after.png").exists() else ""))


# ------------------------------------------------------------------------- labels
#: The label-form check warns when another written form of the labels holds this many times
#: the base model's probability of the form the run trains.
LABEL_FORM_RATIO = 4.0


def label_form_check(training_client, tokenizer, model_input, labels, separator, labels_file,
                     ratio=LABEL_FORM_RATIO):
    """The label-form check (``token_set.compare_label_forms``) on a client that has not trained:
    the form the run trains (each label after ``separator``, as written in ``labels_file``)
    against the spaced, bare and capitalized forms, at ``model_input``'s ending. Returns the
    report's lines and a warning (None when no form holds ``ratio`` times the trained form's mass)."""
    from token_set import LABEL_FORMS, compare_label_forms

    trained_name = f"yours (sep {separator!r})"
    forms = {trained_name: lambda word: separator + word, **LABEL_FORMS}
    report = compare_label_forms(training_client, tokenizer, model_input, labels, forms)
    trained = next(form for form in report.forms if form.name == trained_name)
    best = report.most_mass
    lines = str(report).splitlines()[:1 + len(report.forms)]  # the table; the recipe scores labels of any length
    if best.pieces == trained.pieces or best.mass <= ratio * trained.mass:
        return lines, None
    times = f"{best.mass / trained.mass:.3g}x" if trained.mass > 0 else "infinitely"
    warning = (f"WARNING: the base model puts {trained.mass:.3g} of its probability on the labels as you train them "
               f"({trained.pieces[0]!r}, ...) and {times} more, {best.mass:.3g}, on the {best.name} form "
               f"({best.pieces[0]!r}, ...) (first tokens, at the first training example's ending). Training moves "
               f"probability onto a form the model rarely writes here; to train the form it prefers, write the "
               f"labels that way in {labels_file} (labels of several tokens are scored exactly), or change prefill "
               "or label_separator, and look again with the labels sub-command")
    return lines, warning


def show_labels(config):
    """The ``labels`` sub-command: for the model and the prefill at the first training example's
    ending, each label's tokens (``token_set.label_token_sequences``) and the base model's
    probability on each written form of the labels (``token_set.compare_label_forms``). Trains
    nothing and writes nothing; returns the printed text."""
    from token_set import label_token_sequences

    from .checks import ending_tokens
    from .prompts import example_model_input

    backend = _backend(config)
    model_name = config.model_name or DEFAULT_MODELS[backend]
    labels = read_labels(config.labels_file)
    first = read_examples(config.train_file)[0]
    tokenizer = _tokenizer(backend, model_name)
    builder = prompt_builder(backend, model_name, config.renderer_name, tokenizer)
    try:
        model_input = example_model_input(builder, first, config.prefill, Path(config.train_file).parent)
    except ValueError as error:
        raise RecipeError(f"{first.id} ({first.source}): {error}") from None
    if not model_input.chunks or model_input.chunks[-1].type != "encoded_text":
        raise RecipeError(f"{first.id} ({first.source}): the prompt ends with an image, so the label would follow "
                          "an image; end it with text, e.g. prefill='Emotion:'")
    ending = ending_tokens(model_input, set(tokenizer.all_special_ids))
    lines = [f"backend: {backend}; model: {model_name}; after the prompt of {first.id} ({first.source}), "
             f"ending {tokenizer.decode(ending)[-40:]!r}, with label_separator={config.label_separator!r}"
             + (f" and label_end={config.label_end!r}" if config.label_end else "")]
    try:
        sequences = label_token_sequences(tokenizer, ending, labels, config.label_separator, config.label_end)
        lines.append("each label's tokens:")
        lines += [f"  {label!r}: {tokenizer.convert_ids_to_tokens(ids)} {ids}" for label, ids in zip(labels, sequences)]
    except ValueError as error:
        lines.append(f"the labels cannot be scored exactly here: {error}")
    if backend == "tinker":
        service_client = _service_client(backend, config, None)
    else:
        import tinker_offline

        service_client = tinker_offline.ServiceClient()  # no state is saved
    client = service_client.create_lora_training_client(base_model=model_name, rank=config.lora_rank,
                                                        seed=config.seed).result()
    lines.append("the base model's probability on each form of the labels (first tokens):")
    form_lines, warning = label_form_check(client, tokenizer, model_input, labels, config.label_separator,
                                           config.labels_file)
    lines += [f"  {line}" for line in form_lines] + ([warning] if warning else [])
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# ----------------------------------------------------------------------- command line
USAGE = """\
usage: python -m token_distribution_recipe.train key=value ... [--dry-run]
       python -m token_distribution_recipe.train labels labels_file=... train_file=... [prefill=...]

Every setting is key=value (chz), e.g. batch_size=4 resume=True; --dry-run (dry_run=True)
and --help are the only flags. The labels sub-command prints each label's tokens after the
first training example's prompt and the base model's probability on each form of the labels,
then exits 0 without training (log_path is not needed).

exit status:
  0    done: trained to the end, a dry run, --help, or nothing to do (resume=True on a finished run)
  1    a training step failed (the message says how to resume from the last saved state)
  2    a settings or data error (a flag, a setting, a file or an example); nothing was sent
  130  Ctrl-C: the first one saves the state and prints the resume command; a second quits without saving"""


def _help_text():
    """chz's list of the settings, without its warning that the required ones are missing."""
    text = chz.Blueprint(Config).get_help(color=sys.stdout.isatty())
    paragraphs = [p for p in text.split("\n\n") if not p.startswith("WARNING: Missing required arguments")]
    return USAGE + "\n\n" + "\n\n".join(paragraphs).rstrip()


def _spelled(name, value, fields):
    """`name=value` with the name as Config spells it (hyphens as underscores, a misspelling
    as its closest setting), or None when no setting is close."""
    import difflib

    key = name.replace("-", "_")
    if key not in fields:
        close = difflib.get_close_matches(key, list(fields), n=1)
        if not close:
            return None
        key = close[0]
    return f"{key}={value}"


def _flag_message(argv, index, fields):
    """What to say about a flag other than --dry-run: `--resume`, `--batch-size 4`, `--lr=1e-4`."""
    name, has_value, value = argv[index].lstrip("-").partition("=")
    shown = argv[index]
    if not has_value:
        following = argv[index + 1] if index + 1 < len(argv) else None
        if following is not None and "=" not in following and not following.startswith("-"):
            value, shown = following, f"{shown} {following}"
        else:
            key = name.replace("-", "_")
            value = "True" if key in fields and isinstance(fields[key]._default, bool) else "<value>"
    spelling = _spelled(name, value, fields)
    if spelling:
        return f"unknown flag {shown!r}: write {spelling} (settings are key=value; --dry-run is the only flag)"
    return f"unknown flag {shown!r}: settings are key=value and --dry-run is the only flag (--help lists them)"


def config_from_argv(argv):
    """The Config that command-line arguments ask for: ``key=value`` settings (chz) and
    ``--dry-run``. Another flag, an unknown setting or a value of the wrong type raises
    RecipeError, in one line that names the right spelling where there is one."""
    fields = chz.chz_fields(Config)
    settings = []
    for index, arg in enumerate(argv):
        if arg == "--dry-run":
            settings.append("dry_run=True")
        elif arg.startswith("-"):
            raise RecipeError(_flag_message(argv, index, fields))
        elif "=" not in arg:
            raise RecipeError(f"{arg!r} is not a setting: settings are key=value, e.g. train_file=my.jsonl "
                              "(--help lists them)")
        else:
            key, value = arg.split("=", 1)
            if key.isidentifier() and key not in fields:
                spelling = _spelled(key, value, fields)
                raise RecipeError(f"no setting is called {key!r}" + (f": write {spelling}" if spelling else "")
                                  + " (--help lists the settings)")
            settings.append(arg)
    try:
        return chz.Blueprint(Config).make_from_argv(settings)
    except chz.blueprint.MissingBlueprintArg as error:  # "Missing required arguments for parameter(s): a, b"
        missing = str(error).split(": ", 1)[-1].split(", ")
        raise RecipeError(f"missing required settings: {', '.join(f'{m}=...' for m in missing)} "
                          "(--help lists the settings)") from None
    except (chz.blueprint.ExtraneousBlueprintArg, chz.blueprint.InvalidBlueprintArg,
            chz.blueprint.ConstructionException) as error:
        # one line; chz's note on polymorphic construction says nothing about these settings
        raise RecipeError(" ".join(str(error).split("\n\n- Failed to interpret it as a factory")[0].split())) from None


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(_help_text())
        return
    try:
        if argv[:1] == ["labels"]:
            settings = argv[1:] + ([] if any(a.startswith("log_path=") for a in argv) else ["log_path=."])
            show_labels(config_from_argv(settings))
            return
        config = config_from_argv(argv)
        result = run(config)
    except StepFailed as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except (RecipeError, DataFileError, ExampleCheckError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("stopped without saving; the states listed in checkpoints.jsonl are intact", file=sys.stderr)
        sys.exit(130)
    if result.status == "interrupted":
        sys.exit(130)


if __name__ == "__main__":
    main()
