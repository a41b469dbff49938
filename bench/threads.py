"""Benchmark: a training step beside a busy core, with torch's threads fixed or fitted.

One step is ``forward_backward_custom(kl_over_labels)`` + ``optim_step`` on the book's first
8 training sentences (SmolLM2-135M-Instruct, LoRA rank 16), timed in a fresh process, the
minimum of 5 steps after one warm-up step. It runs four cases:

  quiet, fitted      nothing else running; the engine fits its threads (tinker_offline.threads)
  quiet, all cores   nothing else running; TINKER_OFFLINE_THREADS = every core (torch's default)
  busy, all cores    another process spins on one core the whole time; every core's thread
  busy, fitted       the same busy core; the engine sees it and uses the cores left

and prints each step's time and its ratio to "quiet, fitted". Goal (issue 26): one busy core
costs at most 2x. On a 1-core machine there is nothing to compare.

    ./.venv/bin/python -m bench.threads [--steps 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import torch
import emotion_task, tinker_offline, token_set
from tinker import types
from tinker_offline.model_store import load_tokenizer

steps = int(sys.argv[1])
tokenizer = load_tokenizer(tinker_offline.DEFAULT_BASE_MODEL)
client = tinker_offline.ServiceClient().create_lora_training_client(
    base_model=tinker_offline.DEFAULT_BASE_MODEL, rank=16).result()
label_ids = token_set.label_token_ids(tokenizer, emotion_task.LABELS, " ")
data = [token_set.build_datum(
            types.ModelInput.from_ints(emotion_task.build_prompt_tokens(
                tokenizer, emotion_task.SYSTEM_PROMPT, example["text"], emotion_task.ANSWER_PREFIX)),
            token_set.target_vector(example["target"], emotion_task.LABELS), label_ids)
        for example in emotion_task.read_examples("train.jsonl")[:8]]
seconds = []
for step in range(steps + 1):  # the first is a warm-up
    start = time.perf_counter()
    client.forward_backward_custom(data, token_set.kl_over_labels).result()
    client.optim_step(types.AdamParams(learning_rate=1e-4)).result()
    seconds.append(time.perf_counter() - start)
print(min(seconds[1:]), torch.get_num_threads())
"""


@contextlib.contextmanager
def busy_core(busy: bool):
    """A process that spins on one core while the block runs (nothing when busy is False)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def step_seconds(steps: int, threads: int | None, busy: bool) -> tuple[float, int]:
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "TINKER_OFFLINE_THREADS")}
    if threads is not None:
        env["TINKER_OFFLINE_THREADS"] = str(threads)
    with busy_core(busy):
        out = subprocess.run([sys.executable, "-c", CHILD, str(steps)], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
    return float(out[-2]), int(out[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    cases = [("quiet, fitted", None, False), ("quiet, all cores", cores, False),
             ("busy, all cores", cores, True), ("busy, fitted", None, True)]
    results = {}
    for name, threads, busy in cases:
        results[name] = step_seconds(args.steps, threads, busy)
        print(f"{name:<18} {results[name][0]:7.3f} s per step  ({results[name][1]} torch thread(s) at the end)", flush=True)
    base = results["quiet, fitted"][0]
    print("ratios to 'quiet, fitted': " + ", ".join(f"{name} {seconds / base:.2f}x" for name, (seconds, _) in results.items()))
    ratio = results["busy, fitted"][0] / base
    print(f"one busy core costs {ratio:.2f}x with fitted threads (goal <= 2x), "
          f"{results['busy, all cores'][0] / base:.2f}x with a thread on every core")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
