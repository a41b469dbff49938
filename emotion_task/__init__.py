"""The book's task code, one body per name: the emotion data, the prompt and its label
tokens, the datum builders, the KL losses and the evaluation helpers.

The chapters show a teaching copy of each function they use, so that a downloaded
notebook runs on its own; ``tests/test_teaching_copies.py`` fails when a copy's code
differs from the function here, and ``book/reference.md`` shows these bodies. The tests
and the benchmark import them from here.

Shapes: ``T`` is ``model_input.length``, ``K`` the number of labels (``len(label_ids)``).
Row ``t`` of ``target_tokens``, ``weights`` and ``logprobs`` scores the token after input
position ``t``, so the token after the prompt is row ``T - 1``.
"""

import json
import os
import textwrap
import urllib.request
from pathlib import Path

import numpy as np
import torch
from tinker import types

#: Where the data is published, read when there is no local copy (TINKER_BOOK_DATA_URL can
#: point it at a clone); the pages set it in their setup cell (tools/setup_cell.py).
DATA_URL = os.environ.get(
    "TINKER_BOOK_DATA_URL", "https://raw.githubusercontent.com/tinker-token-set-book/book/main/data/emotions/"
)
#: The repository's copy of the data (a chapter's own is ``../data/emotions``).
LOCAL_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "emotions"


# ------------------------------------------------------------------------------ data
def read_data_file(name):
    """The text of one data file: the local copy when there is one, else the published one."""
    local = LOCAL_DATA_DIR / name
    if local.exists():
        return local.read_text()
    with urllib.request.urlopen(DATA_URL + name) as response:
        return response.read().decode()


def read_examples(name):
    """The examples of one .jsonl split: dicts with "id", "text" and "target" (label -> p)."""
    return [json.loads(line) for line in read_data_file(name).splitlines() if line.strip()]


LABEL_INFO = json.loads(read_data_file("labels.json"))
LABELS = LABEL_INFO["labels"]
SYSTEM_PROMPT = LABEL_INFO["system_prompt"]
ANSWER_PREFIX = LABEL_INFO["answer_prefix"]


def target_vector(target):
    """A target dict as a float32 [K] vector in LABELS order; omitted labels are 0."""
    return np.array([target.get(word, 0.0) for word in LABELS], dtype=np.float32)


# ----------------------------------------------------------------- prompt and labels
def build_prompt_tokens(tokenizer, sentence):
    """The prompt as a list of T ints: system prompt and sentence in the chat template, the
    generation prompt, then the answer prefix, so that the next token is the label word."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": sentence}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text + ANSWER_PREFIX, add_special_tokens=False)


def label_token_ids(tokenizer):
    """One token id per label, in LABELS order: the first token of " " + word."""
    return [tokenizer.encode(" " + word, add_special_tokens=False)[0] for word in LABELS]


def check_label_tokens(tokenizer, prompt_tokens, words, separator=" "):
    """Each word's first token right after prompt_tokens, as a list of ids.

    Raises ValueError if a word changes the prompt's own tokens or two words share a first
    token; prints a warning for first tokens that are only a fragment of their word.
    """
    prompt_tokens = list(prompt_tokens)
    prompt_text = tokenizer.decode(prompt_tokens)
    first_ids, problems, fragments = {}, [], []
    for word in words:
        ids = tokenizer.encode(prompt_text + separator + word, add_special_tokens=False)
        if ids[: len(prompt_tokens)] != prompt_tokens:
            problems.append(f"{word!r}: the prompt's tokens change when {separator + word!r} follows it")
            continue
        first_ids[word] = ids[len(prompt_tokens)]
        first_text = tokenizer.decode([first_ids[word]])
        if first_text.strip() != word:
            fragments.append(f"{word!r} starts with {first_text!r}")
    words_by_id = {}
    for word, token_id in first_ids.items():
        words_by_id.setdefault(token_id, []).append(word)
    for token_id, sharing in words_by_id.items():
        if len(sharing) > 1:
            problems.append(f"{' and '.join(map(repr, sharing))} share the first token {tokenizer.decode([token_id])!r}")
    if fragments:
        message = f"warning: {len(fragments)} of {len(words)} first tokens are fragments: " + "; ".join(fragments)
        print(textwrap.fill(message, width=100, subsequent_indent="  "))
    if problems:
        raise ValueError("label tokens fail the check:\n  " + "\n  ".join(problems))
    return [first_ids[word] for word in words]


def label_ids_for_ending(tokenizer, prompt_tail, leading_space):
    """One token id per label after `prompt_tail` (the last text chunk), and what rules any out."""
    ids, problems = [], []
    tail_text = tokenizer.decode(prompt_tail)
    for word in LABELS:
        piece = " " + word if leading_space else word
        word_ids = tokenizer.encode(piece, add_special_tokens=False)
        ids.append(word_ids[0])
        if len(word_ids) != 1:
            problems.append(f"{piece!r} is {len(word_ids)} tokens: {tokenizer.convert_ids_to_tokens(word_ids)}")
        elif tokenizer.encode(tail_text + piece, add_special_tokens=False) != prompt_tail + word_ids:
            problems.append(f"{piece!r}: prompt + word does not tokenize as prompt + [id]")
    if len(set(ids)) != len(ids):
        problems.append("two labels share a first token")
    return ids, problems


# -------------------------------------------------------------------------- datums
def build_datum(prompt_tokens, target, label_ids):
    """A datum for a custom loss: target_tokens [T, K] (the label ids on every row; only row
    T-1 is read), zero weights [T, K], and the target on row T-1 of target_distribution [T, K]."""
    T, K = len(prompt_tokens), len(label_ids)
    # The target rides on row T-1 of a [T, K] array: only the custom loss reads it, and
    # [T, K] is a shape (rank 2) that a loss handle can declare.
    target_distribution = np.zeros((T, K), dtype=np.float32)
    target_distribution[T - 1] = target_vector(target)
    return types.Datum(
        model_input=types.ModelInput.from_ints(prompt_tokens),
        loss_fn_inputs={
            "target_tokens": np.tile(np.array(label_ids, dtype=np.int64), (T, 1)),  # [T, K]
            "weights": np.zeros((T, K), dtype=np.float32),
            "target_distribution": target_distribution,  # [T, K], the target on row T-1
        },
    )


def build_cross_entropy_datum(prompt_tokens, target, label_ids):
    """A datum for the built-in cross_entropy: the target probabilities as weights on row T-1."""
    T, K = len(prompt_tokens), len(label_ids)
    weights = np.zeros((T, K), dtype=np.float32)
    weights[T - 1] = target_vector(target)  # the target probabilities, on the scored row only
    return types.Datum(
        model_input=types.ModelInput.from_ints(prompt_tokens),
        loss_fn_inputs={
            "target_tokens": np.tile(np.array(label_ids, dtype=np.int64), (T, 1)),  # [T, K]
            "weights": weights,
        },
    )


def build_scored_datum(model_input, target_distribution, label_ids, scored_row=None):
    """A datum that asks for the K label ids at one row (by default the last, T - 1).

    T is model_input.length, which counts every chunk (image chunks included). The weights
    are 1 on the scored row and 0 elsewhere: they mark the row, and no other row is scored.
    """
    T, K = model_input.length, len(label_ids)
    row = T - 1 if scored_row is None else scored_row
    target_tokens = np.zeros((T, K), dtype=np.int64)
    target_tokens[row] = label_ids
    weights = np.zeros((T, K), dtype=np.float32)
    weights[row] = 1.0
    return types.Datum(
        model_input=model_input,
        loss_fn_inputs={
            "target_tokens": target_tokens,
            "weights": weights,
            "target_distribution": np.asarray(target_distribution, dtype=np.float32),
        },
    )


def build_sparse_datum(model_input, target, label_ids):
    """One datum for both routes, as 2-D torch tensors that are zero outside row T-1 (Datum
    stores them in CSR form): the label ids, the target as weights, the target again."""
    T, K = model_input.length, len(label_ids)
    target_tokens = torch.zeros((T, K), dtype=torch.int64)
    target_tokens[T - 1] = torch.tensor(label_ids)  # row T-1 scores the token after the prompt
    on_scored_row = torch.zeros((T, K), dtype=torch.float32)
    on_scored_row[T - 1] = torch.from_numpy(target_vector(target))
    return types.Datum(
        model_input=model_input,
        loss_fn_inputs={
            "target_tokens": target_tokens,  # CSR, by Datum itself
            "weights": on_scored_row,  # CSR, by Datum itself
            "target_distribution": types.TensorData.from_torch_sparse(on_scored_row),
        },
    )


def server_datum(datum):
    """The datum as cross_entropy takes it: only target_tokens and weights (when present)."""
    inputs = {key: datum.loss_fn_inputs[key] for key in ("target_tokens", "weights") if key in datum.loss_fn_inputs}
    return types.Datum(model_input=datum.model_input, loss_fn_inputs=inputs)


def scored_row_of(datum):
    """The one row whose weights are non-zero."""
    weights = datum.loss_fn_inputs["weights"].to_torch()
    rows = torch.nonzero(weights.reshape(weights.shape[0], -1).any(dim=-1)).flatten().tolist()
    if len(rows) != 1:
        raise ValueError(f"expected exactly one scored row, found {len(rows)}: {rows[:5]}")
    return rows[0]


# -------------------------------------------------------------------------- losses
def kl_over_labels(data, logprobs_list):
    """Sum over datums of KL(p || q), q = the K logprobs of row T-1 renormalized; p is row
    T-1 of the datum's target_distribution. A callable for forward_backward_custom."""
    total = torch.zeros(())
    for datum, logprobs in zip(data, logprobs_list):  # logprobs: [T, K], never [T, vocab_size]
        row = logprobs[-1]                             # row T-1: the token after the prompt
        log_q = row - torch.logsumexp(row, dim=-1)     # renormalize over the K labels
        p = datum.loss_fn_inputs["target_distribution"].to_torch()[-1]
        total = total + (torch.xlogy(p, p) - p * log_q).sum()
    return total, {"kl:sum": float(total.detach())}


def set_kl(logprobs, target_distribution):
    """The same KL for one datum, traceable by create_custom_loss: both inputs [T, K] (rank 2)."""
    p = target_distribution[-1]
    log_q = logprobs[-1] - torch.logsumexp(logprobs[-1], dim=-1)
    kl = (torch.xlogy(p, p) - p * log_q).sum()
    return kl, {"custom/kl:sum": kl}


def kl_over_set(data, logprobs_list):
    """Sum over datums of KL(p || q); q renormalizes the K logprobs at the datum's scored row."""
    total = torch.zeros(())
    for datum, logprobs in zip(data, logprobs_list):
        p = datum.loss_fn_inputs["target_distribution"].to_torch()
        row = logprobs[scored_row_of(datum)]  # [K]
        log_q = row - torch.logsumexp(row, dim=-1)
        total = total + torch.sum(torch.xlogy(p, p) - p * log_q)
    return total, {"kl:sum": float(total.detach())}


def kl_divergence(p, q):
    """KL(p || q) for two distributions over the labels; inf where q misses a label p has."""
    p, q = torch.as_tensor(p), torch.as_tensor(q)
    return float(torch.sum(torch.xlogy(p, p) - torch.xlogy(p, q)))


# ---------------------------------------------------------------------- evaluation
def forward_logprobs(training_client, data):
    """One forward pass; each datum's logprobs, shaped like its target_tokens."""
    result = training_client.forward([server_datum(d) for d in data], "cross_entropy").result()
    return [out["logprobs"].to_torch() for out in result.loss_fn_outputs]


def evaluate_examples(training_client, data):
    """One forward pass; per example the renormalized distribution q ([N, K]), the KL over the
    set ([N]) and the mass on the set ([N]), at row T-1."""
    result = training_client.forward([server_datum(d) for d in data], "cross_entropy").result()
    q_rows, kls, masses = [], [], []
    for datum, output in zip(data, result.loss_fn_outputs):
        row = output["logprobs"].to_torch()[datum.model_input.length - 1]
        log_mass = torch.logsumexp(row, dim=-1)
        log_q = row - log_mass
        p = datum.loss_fn_inputs["target_distribution"].to_torch()[-1]
        q_rows.append(log_q.exp().numpy())
        kls.append(float((torch.xlogy(p, p) - p * log_q).sum()))
        masses.append(float(log_mass.exp()))
    return {"q": np.array(q_rows), "kl": np.array(kls), "mass": np.array(masses)}


def evaluate(training_client, data):
    """The mean KL over the set and the mean mass on the set, from one forward pass."""
    per_example = evaluate_examples(training_client, data)
    return float(per_example["kl"].mean()), float(per_example["mass"].mean())


def set_summary(row_logprobs, top=3):
    """Mass on the set and the top labels of the renormalized distribution, as text."""
    row_logprobs = torch.as_tensor(row_logprobs)
    q = torch.softmax(row_logprobs, dim=-1)
    mass = float(torch.exp(torch.logsumexp(row_logprobs, dim=-1)))
    best = torch.argsort(q, descending=True)[:top].tolist()
    return f"mass on set {mass:.3f}; top: " + ", ".join(f"{LABELS[i]} {float(q[i]):.2f}" for i in best)
