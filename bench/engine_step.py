"""Benchmark: what one training step costs through tinker_offline vs hand-written PyTorch.

On the same batch (the book's first 8 training sentences, train-01..08, one per dominant
emotion, with 21 label tokens at the answer row)
and the same model (SmolLM2-135M-Instruct + LoRA rank 16 on attention, MLP and lm_head),
in one process, it times per step (median):

  hand-written   plain PyTorch + peft: forward, renormalized KL at row T-1, backward, AdamW
  built-in       forward_backward([T, K] cross_entropy, weights = target) + optim_step
  callable       forward_backward_custom(data, kl_over_labels) + optim_step  (two passes, as the SDK)
  handle         forward_backward_custom(data, create_custom_loss(...))  + optim_step  (one pass:
                 a service with custom_loss_server_side=True, as a server that runs uploaded
                 losses; with the SDK's default the handle runs the callable's two passes)
  callable, one datum per pass   the callable route without batching datums together
  built-in, no prefix sharing    the built-in route with the engine's prefix sharing off: every
                 prompt runs in full (the 8 prompts share their first 20 tokens)

and prints each median, its ratio to the hand-written step, the peak RSS, and model load
times (warm, in a fresh process; cold with --cold, which dequantizes into a temp cache).

    ./.venv/bin/python bench/engine_step.py [--steps 5] [--cold]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from tinker import types

import emotion_task
import token_set
import tinker_offline
from tinker_offline import lora, model_store
from tinker_offline.lora import build_lora_model, lora_target_modules

RANK = 16
BATCH_SIZE = 8
ADAM = types.AdamParams(learning_rate=1e-4)
TARGETS = {"built-in": 1.10, "handle": 1.10, "callable": 1.45}
RSS_TARGET_GB = 3.0


def load_task(tokenizer):
    """The book's first 8 training sentences (train-01..08: the batch earlier runs of this
    benchmark used) as prompts and [K] targets, with the label ids."""
    examples = emotion_task.read_examples("train.jsonl")[:BATCH_SIZE]
    prompts = [emotion_task.build_prompt_tokens(tokenizer, emotion_task.SYSTEM_PROMPT, example["text"], emotion_task.ANSWER_PREFIX) for example in examples]
    return token_set.label_token_ids(tokenizer, emotion_task.LABELS), prompts, examples


def hand_written_step_fn(label_ids, prompts, targets):
    """What one would write without Tinker: a padded batch, full logits, KL at row T-1."""
    model = build_lora_model(model_store.load_base_model(tinker_offline.DEFAULT_BASE_MODEL), RANK, 0, lora_target_modules(True, True, True))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=ADAM.learning_rate, betas=(ADAM.beta1, ADAM.beta2), eps=ADAM.eps, weight_decay=0.0)
    lengths = torch.tensor([len(t) for t in prompts])
    input_ids = torch.zeros(len(prompts), int(lengths.max()), dtype=torch.long)
    for row, tokens in enumerate(prompts):
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
    attention_mask = (torch.arange(input_ids.shape[1])[None] < lengths[:, None]).long()
    target = torch.from_numpy(np.stack(targets))
    ids = torch.tensor(label_ids)

    def step():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        answer_rows = logits[torch.arange(len(prompts)), lengths - 1]
        set_logprobs = torch.log_softmax(answer_rows, -1)[:, ids]
        log_q = set_logprobs - torch.logsumexp(set_logprobs, -1, keepdim=True)
        loss = (torch.xlogy(target, target) - target * log_q).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def without_prefix_sharing(step):
    """``step`` with the engine's prefix sharing out of reach (lora.MIN_SHARED_PREFIX)."""

    def unshared():
        saved, lora.MIN_SHARED_PREFIX = lora.MIN_SHARED_PREFIX, sys.maxsize
        try:
            step()
        finally:
            lora.MIN_SHARED_PREFIX = saved

    return unshared


def median_seconds(step, steps: int) -> float:
    step()  # warm-up: allocations, lazy init
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm_load_seconds() -> float:
    code = (
        "import time; t=time.perf_counter(); import tinker_offline;"
        "c=tinker_offline.ServiceClient().create_lora_training_client(base_model=tinker_offline.DEFAULT_BASE_MODEL, rank=16).result();"
        "print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cold_dequantize_seconds() -> float:
    with tempfile.TemporaryDirectory() as cache:
        code = (
            "import time; from tinker_offline import model_store; t=time.perf_counter();"
            "model_store.load_base_model(model_store.SUPPORTED_BASE_MODELS.__iter__().__next__());"
            "print(time.perf_counter()-t)"
        )
        env = dict(os.environ, TINKER_OFFLINE_CACHE=cache)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per route (after one warm-up)")
    parser.add_argument("--cold", action="store_true", help="also time dequantizing the GGUF into an empty cache")
    args = parser.parse_args()
    torch.manual_seed(0)

    service_client = tinker_offline.ServiceClient()
    tokenizer = model_store.load_tokenizer(tinker_offline.DEFAULT_BASE_MODEL)
    label_ids, prompts, examples = load_task(tokenizer)
    print(f"batch: {len(prompts)} datums, {min(map(len, prompts))}-{max(map(len, prompts))} tokens, K={len(label_ids)}, "
          f"torch threads={torch.get_num_threads()}")

    def client(**options):
        sc = tinker_offline.ServiceClient(**options) if options else service_client
        return sc.create_lora_training_client(base_model=tinker_offline.DEFAULT_BASE_MODEL, rank=RANK, seed=0).result()

    kl_data = [token_set.build_datum(types.ModelInput.from_ints(t), token_set.target_vector(ex["target"], emotion_task.LABELS), label_ids)
               for t, ex in zip(prompts, examples)]
    ce_data = [token_set.server_datum(d) for d in kl_data]  # the same datums: the target is their weights
    server_side = tinker_offline.ServiceClient(custom_loss_server_side=True)
    handle = server_side.create_custom_loss(token_set.set_kl, {"logprobs": 2, "target_distribution": 2}).result()

    def route(training_client, run):
        def step():
            run(training_client).result()
            training_client.optim_step(ADAM).result()
        return step

    routes = {
        "hand-written": hand_written_step_fn(label_ids, prompts, [token_set.target_vector(ex["target"], emotion_task.LABELS) for ex in examples]),
        "built-in": route(client(), lambda c: c.forward_backward(ce_data, "cross_entropy")),
        "callable": route(client(), lambda c: c.forward_backward_custom(kl_data, token_set.kl_over_labels)),
        "handle": route(
            server_side.create_lora_training_client(base_model=tinker_offline.DEFAULT_BASE_MODEL, rank=RANK, seed=0).result(),
            lambda c: c.forward_backward_custom(kl_data, handle),
        ),
        "callable, one datum per pass": route(
            client(max_tokens_per_batch=1), lambda c: c.forward_backward_custom(kl_data, token_set.kl_over_labels)
        ),
        "built-in, no prefix sharing": without_prefix_sharing(
            route(client(), lambda c: c.forward_backward(ce_data, "cross_entropy"))
        ),
    }
    medians = {name: median_seconds(step, args.steps) for name, step in routes.items()}
    base = medians["hand-written"]
    print(f"\n{'route':32s} {'median s/step':>14s} {'x hand-written':>15s} {'target':>8s}")
    for name, seconds in medians.items():
        target = TARGETS.get(name)
        mark = "" if target is None else f"<= {target:.2f}" + (" ok" if seconds / base <= target else " MISS")
        print(f"{name:32s} {seconds:14.3f} {seconds / base:15.2f} {mark:>8s}")
    batching_gain = medians["callable, one datum per pass"] / medians["callable"]
    print(f"\nbatching datums (padding + mask) vs one datum per pass: {batching_gain:.2f}x faster")
    sharing_gain = medians["built-in, no prefix sharing"] / medians["built-in"]
    print(f"running the {lora.shared_prefix_length(prompts)}-token shared prefix once vs in every prompt: "
          f"{sharing_gain:.2f}x faster (built-in)")

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    warm = warm_load_seconds()
    print(f"peak RSS: {peak_gb:.2f} GB (target <= {RSS_TARGET_GB:.1f})")
    print(f"warm load (fresh process: import + cached weights + LoRA client): {warm:.2f} s")
    cold = cold_dequantize_seconds() if args.cold else None
    if cold is not None:
        print(f"cold load (dequantize GGUF into an empty cache): {cold:.1f} s")
    ratios = " ".join(f"{n}={medians[n] / base:.2f}x" for n in ("built-in", "callable", "handle"))
    ok = all(medians[n] / base <= t for n, t in TARGETS.items()) and peak_gb <= RSS_TARGET_GB
    print(f"SUMMARY hand-written={base:.3f}s/step {ratios} peak_rss={peak_gb:.2f}GB warm_load={warm:.2f}s"
          + (f" cold_load={cold:.1f}s" if cold is not None else "") + f" targets={'met' if ok else 'missed'}")


if __name__ == "__main__":
    main()
