"""Tinker's own documentation examples, run against tinker_offline.

Each file in tests/doc_examples/ holds one code example from Tinker's docs ("Loss Functions",
"Cross-Entropy" with top-K distillation, "Custom Loss Functions") or from tinker-cookbook
tutorial 202, verbatim below a comment header that names its source, the substitutions the
test applies and the names it prepares. The test:

1. splits the file at its marker line (the tutorial cells are also checked, verbatim,
   against the whole tutorial file, tutorial202_full_marimo_file.py);
2. applies the header's ``SUBSTITUTE`` lines as plain string replacements, asserting each
   occurs: ``tinker.ServiceClient()`` -> ``tinker_offline.ServiceClient()``, Qwen model names
   -> SmolLM2-135M-Instruct, and a HF ``AutoTokenizer.from_pretrained(...)`` -> the offline
   client's tokenizer; nothing else (no hosted model name or client may remain);
3. runs it in a namespace holding only the header's ``PREPARED`` names (what the page defines
   earlier or says exists: ``data``, ``training_client``, tensors for pseudo-code, ...) after
   the examples it ``DEPENDS`` on. Examples with top-level ``await`` are compiled with
   ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` (as Jupyter and marimo run such cells) and the
   resulting coroutine is run with ``asyncio.run`` on a worker thread;
4. makes a few checks on what the example left (``AFTER`` in the header).

An example that the real tinker 0.38 SDK would reject too, or that uses a loss tinker_offline
does not implement (only ``cross_entropy`` and custom losses run offline), is a strict xfail
with the exact exception type, and the test also checks the exception's message, so it
cannot xfail for another reason. Examples whose failure poisons a training client get a
client of their own; the others share one module-scoped client.

Two examples call ``tokenizer.apply_chat_template(messages, add_generation_prompt=True)``
and use the result as ``list[int]``, as transformers 4 returned it; transformers 5 (pinned
here) returns a BatchEncoding, so their verbatim form fails before reaching the engine, as it
would with the real SDK. Each also runs as a ``-transformers5_compat`` test id with one more
substitution, listed as ``COMPAT-SUBSTITUTE`` in its header: ``return_dict=False``.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import dataclasses
import inspect
import math
import re
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch
from pydantic import ValidationError
from tinker import types

import tinker
import tinker_offline

EXAMPLES_DIR = Path(__file__).resolve().parent / "doc_examples"
MARKER = "# ===== verbatim example below this line (do not edit) ====="
MARIMO_SOURCE = "tutorial202_full_marimo_file"
BASE_MODEL = tinker_offline.DEFAULT_BASE_MODEL
# (prompt, completion) pairs of the prepared `data`.
SFT_EXAMPLES = [("The capital of France is", " Paris."), ("Two plus two equals", " four.")]
# Strings that must not survive the substitutions: hosted model names and the hosted client.
HOSTED_ONLY = ("tinker.ServiceClient()", "Qwen/", "meta-llama/")


# ------------------------------------------------------------------- example files
@dataclasses.dataclass(frozen=True)
class ExampleFile:
    name: str
    header: str
    text: str  # the verbatim example

    @classmethod
    def load(cls, name: str) -> "ExampleFile":
        raw = (EXAMPLES_DIR / f"{name}.py").read_text()
        assert raw.count(MARKER + "\n") == 1, f"{name}.py: the marker line must occur once"
        header, text = raw.split(MARKER + "\n")
        assert all(line.startswith("#") for line in header.splitlines()), f"{name}.py: header"
        return cls(name, header, text)

    def _lines(self, key: str) -> list[str]:
        return [m.group(1) for m in re.finditer(rf"^# {key}: (.*)$", self.header, re.M)]

    def _field(self, key: str) -> str:
        values = self._lines(key)
        assert len(values) == 1, f"{self.name}.py: expected one '# {key}:' header line"
        return values[0].strip()

    def _substitutions(self, key: str) -> list[tuple[str, str]]:
        subs = []
        for line in self._lines(key):
            if line.strip() == "(none)":
                continue
            old, new = line.split(" -> ")
            subs.append((ast.literal_eval(old), ast.literal_eval(new)))
        return subs

    @property
    def substitutions(self) -> list[tuple[str, str]]:
        return self._substitutions("SUBSTITUTE")

    @property
    def compat_substitutions(self) -> list[tuple[str, str]]:
        return self._substitutions("COMPAT-SUBSTITUTE")

    @property
    def prepared(self) -> set[str]:
        value = self._field("PREPARED")
        return set() if value == "(none)" else {n.strip() for n in value.split(",")}

    @property
    def depends(self) -> list[str]:
        value = self._field("DEPENDS")
        return [] if value == "(none)" else [n.strip() for n in value.split(",")]

    def expected(self, compat: bool) -> str:
        return self._field("EXPECTED-COMPAT" if compat else "EXPECTED")

    def source(self, compat: bool = False) -> str:
        """The example text with the header's substitutions applied, each asserted to occur."""
        text = self.text
        subs = self.substitutions + (self.compat_substitutions if compat else [])
        for old, new in subs:
            assert text.count(old) >= 1, f"{self.name}: substitution {old!r} does not occur"
            text = text.replace(old, new)
        for hosted in HOSTED_ONLY:
            assert hosted not in text, f"{self.name}: {hosted!r} left after the substitutions"
        return text

    def compile(self, compat: bool = False):
        # Blank lines in place of the header keep the file's line numbers in tracebacks.
        return compile(
            "\n" * (self.header.count("\n") + 1) + self.source(compat),
            str(EXAMPLES_DIR / f"{self.name}.py"),
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,
        )


def run_source(example: ExampleFile, ns: dict, compat: bool = False) -> None:
    code = example.compile(compat)
    is_async = bool(code.co_flags & inspect.CO_COROUTINE)
    run_line = example._field("RUN")
    assert run_line.startswith("top-level await") == is_async, f"{example.name}: RUN header"
    with warnings.catch_warnings():
        # tinker 0.38 deprecates the *_async methods (FutureWarning "DEPRECATED: ..."); the
        # offline engine warns as the SDK does. The docs still use them.
        warnings.filterwarnings("ignore", message="DEPRECATED", category=FutureWarning)
        result = eval(code, ns)  # noqa: S307 - the docs' own example code
        if is_async:
            run_coroutine(result)


def run_coroutine(coroutine) -> None:
    """Run ``coroutine`` to completion on a thread with its own event loop: the main thread
    may already run one (Playwright's sync API in the browser tests does)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


# ------------------------------------------------------------------ the engine side
def sft_datum(tokenizer, prompt: str, completion: str) -> types.Datum:
    prompt_ids = tokenizer.encode(prompt)
    completion_ids = tokenizer.encode(completion)
    full = prompt_ids + completion_ids
    return types.Datum(
        model_input=types.ModelInput.from_ints(full[:-1]),
        loss_fn_inputs={
            "target_tokens": full[1:],
            "weights": [0.0] * (len(prompt_ids) - 1) + [1.0] * len(completion_ids),
        },
    )


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run this module's model calls on one torch thread, then restore the setting.

    On this 2-core machine, while another process keeps one core busy, torch's default of
    2 intra-op threads made each small forward_backward take about 29 s instead of 1.1 s
    (measured: a 6-token cross_entropy forward_backward on SmolLM2-135M, 4 calls each way)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def env() -> SimpleNamespace:
    """One offline service and LoRA training client for every example that leaves it usable,
    the prepared `data`, and the reference values the pseudo-code snippets are run on."""
    service_client = tinker_offline.ServiceClient()
    training_client = service_client.create_lora_training_client(
        base_model=BASE_MODEL, rank=16, seed=0
    ).result()
    tokenizer = training_client.get_tokenizer()
    data = [sft_datum(tokenizer, p, c) for p, c in SFT_EXAMPLES]
    reference = training_client.forward([data[0]], "cross_entropy").result()
    first = data[0]
    weights = first.loss_fn_inputs["weights"].to_torch()
    target_logprobs = reference.loss_fn_outputs[0]["logprobs"].to_torch()
    assert target_logprobs.shape == weights.shape

    def fresh_training_client():
        return service_client.create_lora_training_client(base_model=BASE_MODEL, rank=16, seed=0).result()

    return SimpleNamespace(
        service_client=service_client,
        training_client=training_client,
        fresh_training_client=fresh_training_client,
        tokenizer=tokenizer,
        data=data,
        loss_sum=reference.metrics["loss:sum"],
        tokens=first.model_input.to_ints(),
        target_tokens=first.loss_fn_inputs["target_tokens"].to_torch().tolist(),
        weights=weights.tolist(),
        sampling_logprobs=target_logprobs.tolist(),
        advantages=weights.tolist(),  # 1.0 on the completion
        target_logprobs_t=target_logprobs,
        weights_t=weights,
    )


def rl_data(env) -> list[types.Datum]:
    return [
        types.Datum(
            model_input=types.ModelInput.from_ints(env.tokens),
            loss_fn_inputs={
                "target_tokens": env.target_tokens,
                "logprobs": env.sampling_logprobs,
                "advantages": env.advantages,
            },
        )
    ]


# Prepared-name builders ---------------------------------------------------------------
def ce_tensors(env) -> dict:
    return {"target_logprobs": env.target_logprobs_t.clone(), "weights": env.weights_t.clone()}


def rl_tensors(env, **extra) -> dict:
    target_logprobs = env.target_logprobs_t.clone()
    return {
        "torch": torch,
        "target_logprobs": target_logprobs,
        "sampling_logprobs": target_logprobs - 0.1,
        "advantages": torch.tensor(env.advantages),
        **extra,
    }


def custom_def_names(env) -> dict:
    return {"Datum": tinker.Datum, "torch": torch}


TOY_TARGETS = torch.tensor([1, 4, 2, 9, 0, 3])


def toy_target_logprobs(params: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(params, -1)[torch.arange(len(TOY_TARGETS)), TOY_TARGETS]


def toy_params() -> torch.Tensor:
    return torch.randn(6, 10, generator=torch.Generator().manual_seed(0)).requires_grad_(True)


def surrogate_names(env) -> dict:
    params = toy_params()
    logprobs = toy_target_logprobs(params).detach().requires_grad_(True)
    torch.var(logprobs).backward()
    return {
        "params": params,
        "compute_target_logprobs": toy_target_logprobs,
        "logprob_grads": logprobs.grad.detach(),
    }


# AFTER checks -----------------------------------------------------------------------
def scalar_loss(ns, env) -> None:
    loss = ns["loss"]
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and torch.isfinite(loss)


def equals_engine_ce(ns, env) -> None:
    scalar_loss(ns, env)
    assert math.isclose(float(ns["loss"]), env.loss_sum, rel_tol=1e-5, abs_tol=1e-5)


def resolve(name: str) -> Callable:
    """The example stops at a future; a user would call .result() on it next."""

    def after(ns, env) -> None:
        ns[name].result()

    return after


def defined(*names: str) -> Callable:
    def after(ns, env) -> None:
        for name in names:
            assert name in ns, name

    return after


def run_custom_loss(fn_name: str, metric: str) -> Callable:
    def after(ns, env) -> None:
        result = env.training_client.forward_backward_custom(env.data, ns[fn_name]).result()
        assert math.isfinite(result.metrics[metric])

    return after


def surrogate_has_same_gradient(ns, env) -> None:
    (surrogate_grad,) = torch.autograd.grad(ns["surrogate_loss"], ns["params"])
    params = toy_params()
    (true_grad,) = torch.autograd.grad(torch.var(toy_target_logprobs(params)), params)
    torch.testing.assert_close(surrogate_grad, true_grad)


def fb_result_ok(ns, env) -> None:
    assert math.isfinite(ns["result"].metrics["loss:sum"])


def topk_ok(ns, env) -> None:
    result = ns["fwdbwd_result"]
    assert math.isfinite(result.metrics["loss:sum"]) and result.metrics["loss:sum"] >= 0
    assert result.loss_fn_outputs[0]["logprobs"].shape == [len(ns["student_input"]), ns["K"]]
    assert ns["seq_len"] == len(ns["sampled_tokens"]) > 0


def multitarget_ok(ns, env) -> None:
    result = ns["result"]
    assert math.isfinite(result.metrics["masked_ce"]) and result.metrics["masked_ce"] > 0
    assert result.loss_fn_outputs[0]["logprobs"].shape == [len(ns["prompt_tokens"]), 4]


def custom_result_ok(ns, env) -> None:
    metrics = ns["custom_result"].metrics
    assert math.isfinite(metrics["logprob_sq"])
    assert math.isclose(metrics["logprob_sq"], metrics["loss:sum"], rel_tol=1e-6)


def dpo_pair(ns, env) -> None:
    result = env.training_client.forward_backward_custom(env.data, ns["dpo_loss"]).result()
    assert math.isfinite(result.metrics["dpo_loss"]) and len(result.loss_fn_outputs) == 2


# ---------------------------------------------------------------------- the registry
@dataclasses.dataclass(frozen=True)
class Xfail:
    exception: type[BaseException]
    message: str  # must occur in str(exception)
    reason: str


UNSUPPORTED = "tinker_offline implements only cross_entropy and custom losses"


def unsupported(loss: str, why: str = "") -> Xfail:
    return Xfail(
        tinker.RequestFailedError,
        f"loss_fn '{loss}' is not supported offline",
        f"loss_fn={loss!r}: {UNSUPPORTED}; the engine rejects it with RequestFailedError{why}",
    )


TRANSFORMERS5 = Xfail(
    ValidationError,
    "Input should be an instance of Sequence",
    "transformers 5 (pinned here; tinker 0.38 accepts it): apply_chat_template(..., "
    "add_generation_prompt=True) returns a BatchEncoding, not list[int], so "
    "tinker.ModelInput.from_ints(prompt_tokens) raises pydantic's ValidationError, with the "
    "real SDK too; the transformers5_compat variant runs the rest",
)
LIST_SQUARED = (
    "doc bug: logprob_squared_loss computes `logprobs ** 2` on the list[torch.Tensor] that "
    "forward_backward_custom passes (tinker 0.38 TrainingClient._compute_custom_loss calls "
    "loss_fn(data, logprobs_list)), so the real SDK raises the same TypeError"
)


@dataclasses.dataclass(frozen=True)
class Spec:
    prepare: Callable[[SimpleNamespace], dict] = lambda env: {}
    after: Callable | None = None
    xfail: Xfail | None = None
    compat_xfail: Xfail | None = None  # for the transformers5_compat variant, if any
    chain: bool = False  # tutorial 202: one namespace for all its cells, each run once


SPECS: dict[str, Spec] = {
    # ---- old "Loss functions in Tinker" page (tinker-cookbook docs/losses.mdx)
    "losses_old_01_rl_train_example": Spec(
        lambda env: {
            "input_tokens": types.ModelInput.from_ints(env.tokens),
            "target_tokens": env.target_tokens,
            "sampling_logprobs": env.sampling_logprobs,
            "advantages": env.advantages,
            "training_client": env.training_client,
        },
        after=resolve("fwd_bwd_result"),
        xfail=unsupported("ppo", " (the importance_sampling request before it is rejected too)"),
    ),
    "losses_old_02_cross_entropy_impl": Spec(ce_tensors, after=equals_engine_ce),
    "losses_old_03_importance_sampling_impl": Spec(rl_tensors, after=scalar_loss),
    "losses_old_04_ppo_impl": Spec(
        lambda env: rl_tensors(env, clip_low_threshold=0.8, clip_high_threshold=1.2), after=scalar_loss
    ),
    "losses_old_05_ppo_config": Spec(
        lambda env: {"data": rl_data(env), "training_client": env.training_client},
        after=resolve("fwd_bwd_result"),
        xfail=unsupported("ppo"),
    ),
    "losses_old_06_cispo_impl": Spec(
        lambda env: rl_tensors(env, clip_low_threshold=0.8, clip_high_threshold=1.2), after=scalar_loss
    ),
    "losses_old_07_cispo_config": Spec(
        lambda env: {"data": rl_data(env), "training_client": env.training_client},
        after=resolve("fwd_bwd_result"),
        xfail=unsupported("cispo"),
    ),
    "losses_old_08_dro_impl": Spec(
        lambda env: {k: v for k, v in rl_tensors(env, beta=0.05).items() if k != "torch"}, after=scalar_loss
    ),
    "losses_old_09_dro_config": Spec(
        lambda env: {"data": rl_data(env), "training_client": env.training_client},
        after=resolve("fwd_bwd_result"),
        xfail=unsupported("dro"),
    ),
    "losses_old_10_custom_logprob_squared": Spec(custom_def_names, after=defined("logprob_squared_loss")),
    "losses_old_11_custom_call": Spec(
        lambda env: {"data": env.data, "training_client": env.fresh_training_client()},
        xfail=Xfail(
            TypeError,
            "cannot unpack non-iterable",
            "doc bug (old API): forward_backward_custom returns an APIFuture in tinker 0.38, "
            "which `loss, metrics = ...` cannot unpack; the future itself holds a second doc "
            "bug, " + LIST_SQUARED,
        ),
    ),
    "losses_old_12_custom_variance": Spec(custom_def_names, after=run_custom_loss("variance_loss", "variance_loss")),
    "losses_old_13_howitworks_nonlinear": Spec(
        lambda env: {
            "params": toy_params(),
            "compute_target_logprobs": toy_target_logprobs,
            "compute_loss_from_logprobs": torch.var,
        },
        after=scalar_loss,
    ),
    "losses_old_14_howitworks_surrogate": Spec(surrogate_names, after=surrogate_has_same_gradient),
    # ---- new "Loss Functions" page
    "losses_new_01_select_loss": Spec(
        lambda env: {"data": env.data, "training_client": env.training_client}, after=fb_result_ok
    ),
    "losses_new_02_sft_datum": Spec(
        lambda env: {
            "input_tokens": env.tokens,
            "target_tokens": env.target_tokens,
            "weights": env.weights,
            "training_client": env.training_client,
        },
        xfail=Xfail(
            AttributeError,
            "'ForwardBackwardOutput' object has no attribute 'loss'",
            "doc bug: print(result.loss), but tinker 0.38's ForwardBackwardOutput has only "
            "loss_fn_output_type, loss_fn_outputs and metrics (the loss is "
            "metrics['loss:sum']); the forward_backward before it runs",
        ),
    ),
    "losses_new_03_rl_datum_MIRROR_RECONSTRUCTED": Spec(
        lambda env: {
            "types": types,
            "tokens": env.tokens,
            "target_tokens": env.target_tokens,
            "weights": env.weights,
            "sampling_logprobs": env.sampling_logprobs,
            "advantages": env.advantages,
            "training_client": env.training_client,
        },
        after=resolve("future"),
        xfail=unsupported("importance_sampling"),
    ),
    # ---- "Cross-Entropy" page
    "cross_entropy_impl": Spec(ce_tensors, after=equals_engine_ce),
    "cross_entropy_topk_MIRROR_RECONSTRUCTED": Spec(
        lambda env: {"tinker_offline": tinker_offline, "tokenizer": env.tokenizer},
        after=topk_ok,
        xfail=TRANSFORMERS5,
    ),
    # ---- "Custom Loss Functions" page
    "custom_loss_1_logprob_squared": Spec(custom_def_names, after=defined("logprob_squared_loss")),
    "custom_loss_2_call": Spec(
        lambda env: {"data": env.data, "training_client": env.fresh_training_client()},
        xfail=Xfail(TypeError, "unsupported operand type(s) for ** or pow(): 'list' and 'int'", LIST_SQUARED),
    ),
    "custom_loss_3_variance": Spec(custom_def_names, after=run_custom_loss("variance_loss", "variance_loss")),
    "custom_loss_4_multitarget_MIRROR_RECONSTRUCTED": Spec(
        lambda env: {"tokenizer": env.tokenizer, "training_client": env.training_client},
        after=multitarget_ok,
        xfail=TRANSFORMERS5,
        compat_xfail=Xfail(
            ValueError,
            "cannot reshape array of size 4 into shape",
            "tinker 0.38 SDK bug, hit by the real SDK too (the engine calls the same SDK method): "
            "forward_backward_custom's _get_custom_loss_forward_data builds zero weights from a "
            "sparse CSR target_tokens' stored values (4) with its dense [N, 4] shape; the "
            "datum has no weights and tinker.Datum sparsifies the mostly-zero [N, 4] tensor",
        ),
    ),
    # ---- tinker-cookbook tutorial 202 (cells, in notebook order)
    "tutorial202_1_imports": Spec(after=defined("tinker", "torch", "TensorData"), chain=True),
    "tutorial202_2_setup_client": Spec(
        lambda env: {"tinker_offline": tinker_offline},
        after=defined("training_client", "tokenizer"),
        chain=True,
    ),
    "tutorial202_3_prepare_data": Spec(after=defined("sft_datum", "rl_datum"), chain=True),
    "tutorial202_4_run_forward_backward": Spec(
        xfail=unsupported("importance_sampling", " (its cross_entropy call before it runs)"), chain=True
    ),
    "tutorial202_5_inspect_outputs": Spec(
        xfail=Xfail(
            tinker.RequestFailedError,
            "loss_fn 'importance_sampling' is not supported offline",
            "needs is_result from tutorial202_4, whose importance_sampling request is rejected "
            f"({UNSUPPORTED}); even then `ce_logprobs[-3:]` would raise TypeError, as "
            "tinker.TensorData has no __getitem__ in tinker 0.38",
        ),
        chain=True,
    ),
    "tutorial202_6_ppo_clipping": Spec(xfail=unsupported("ppo"), chain=True),
    "tutorial202_7_custom_logprob_squared": Spec(after=custom_result_ok, chain=True),
    "tutorial202_8_md_signature_my_loss": Spec(custom_def_names, after=defined("my_loss")),
    "tutorial202_9_md_dpo_loss": Spec(lambda env: {"torch": torch}, after=dpo_pair),
}


def cases():
    for name, spec in SPECS.items():
        example = ExampleFile.load(name)
        variants = [(False, spec.xfail)]
        if example.compat_substitutions:
            variants.append((True, spec.compat_xfail))
        for compat, xfail in variants:
            marks = []
            if xfail is not None:
                marks.append(pytest.mark.xfail(strict=True, raises=xfail.exception, reason=xfail.reason))
            yield pytest.param(name, compat, id=name + ("-transformers5_compat" if compat else ""), marks=marks)


# ----------------------------------------------------------------------- running them
class Chain:
    """Tutorial 202's cells in one namespace, each run at most once and in dependency order,
    as marimo runs them; a cell whose dependency failed raises that failure."""

    def __init__(self, env):
        self.env = env
        self.ns: dict[str, Any] = {"__name__": "tutorial202"}
        self.outcome: dict[str, BaseException | None] = {}

    def run(self, name: str) -> None:
        if name not in self.outcome:
            for dep in ExampleFile.load(name).depends:
                self.run(dep)
            try:
                run_example(name, self.ns, self.env)
            except BaseException as error:  # noqa: BLE001 - replayed to the cells that need it
                self.outcome[name] = error
                raise
            self.outcome[name] = None
        elif self.outcome[name] is not None:
            raise self.outcome[name]


@pytest.fixture(scope="module")
def tutorial202(env) -> Chain:
    return Chain(env)


def run_example(name: str, ns: dict, env, compat: bool = False) -> None:
    """Add the example's prepared names to `ns` (checked against its header), run it, and
    make its AFTER checks."""
    example = ExampleFile.load(name)
    prepared = SPECS[name].prepare(env)
    assert set(prepared) == example.prepared, f"{name}: PREPARED header vs the test's names"
    ns.update(prepared)
    run_source(example, ns, compat)
    if SPECS[name].after is not None:
        SPECS[name].after(ns, env)


@pytest.mark.parametrize(("name", "compat"), list(cases()))
def test_doc_example(name: str, compat: bool, env, tutorial202) -> None:
    spec = SPECS[name]
    example = ExampleFile.load(name)
    xfail = spec.compat_xfail if compat else spec.xfail
    expected = "pass" if xfail is None else f"xfail {xfail.exception.__name__}"
    assert example.expected(compat) == expected, f"{name}: EXPECTED header vs the test's registry"
    try:
        if spec.chain:
            tutorial202.run(name)
        else:
            ns: dict[str, Any] = {"__name__": f"doc_example_{name}"}
            for dep in example.depends:
                run_example(dep, ns, env)
            run_example(name, ns, env, compat)
    except BaseException as error:
        if xfail is not None and isinstance(error, xfail.exception):
            # Only the failure the reason describes may xfail.
            assert xfail.message in str(error), f"{name} failed otherwise than expected: {error}"
        raise


def test_registry_covers_every_example_file() -> None:
    files = {p.stem for p in EXAMPLES_DIR.glob("*.py")}
    assert files - {MARIMO_SOURCE} == set(SPECS)


def test_tutorial202_cells_match_marimo_source() -> None:
    """Each tutorial202_<n> file is a cell (or a markdown code block) of the whole tutorial,
    verbatim up to marimo's 4-space indentation."""
    full = ExampleFile.load(MARIMO_SOURCE).text
    for name in SPECS:
        if name.startswith("tutorial202_"):
            cell = ExampleFile.load(name).text
            assert textwrap.indent(cell, "    ") in full, name
