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


def target_vector(target, labels=LABELS):
    """A target dict (label -> probability) as a float32 [K] vector in `labels` order; labels
    left out are 0. Raises ValueError for a label not in `labels` (a typo would otherwise
    drop its probability silently)."""
    unknown = sorted(set(target) - set(labels))
    if unknown:
        raise ValueError(f"target names {unknown}, which are not labels; the labels are {labels}")
    return np.array([target.get(word, 0.0) for word in labels], dtype=np.float32)


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


def label_ids_for_ending(tokenizer, prompt_tail, leading_space, labels=LABELS):
    """One token id per label after `prompt_tail` (the last text chunk), and what rules any out."""
    ids, problems = [], []
    tail_text = tokenizer.decode(prompt_tail)
    for word in labels:
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
def build_datum(model_input, target, label_ids, scored_row=None):
    """[T, K] target_tokens with the label ids on row T-1 (or scored_row), target p as weights, p again."""
    T, K = model_input.length, len(label_ids)  # T counts image positions too
    row = T - 1 if scored_row is None else scored_row
    p = torch.tensor(np.asarray(target, dtype=np.float32))
    if p.shape != (K,) or bool((p < 0).any()) or abs(float(p.sum()) - 1) > 1e-3:
        raise ValueError(f"target must be {K} probabilities summing to 1 (fix the data, or divide by the sum), got {tuple(p.shape)} summing to {float(p.sum()):.4f}")
    target_tokens = torch.zeros((T, K), dtype=torch.int64)  # 2-D torch tensors: sent as CSR
    target_tokens[row] = torch.tensor(label_ids)  # row t scores the token after input t
    weights = torch.zeros((T, K))  # cross_entropy reads p here; a custom loss uses only the shape
    weights[row] = p
    return types.Datum(model_input=model_input, loss_fn_inputs={
        "target_tokens": target_tokens, "weights": weights,
        "target_distribution": types.TensorData.from_torch_sparse(weights)})  # read by your loss


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
    """Sum over datums of KL(p || q): q renormalizes row T-1's K logprobs, p is that row of target_distribution."""
    total = torch.zeros(())
    for datum, logprobs in zip(data, logprobs_list):  # logprobs: [T, K], never [T, vocab_size]
        log_q = logprobs[-1] - torch.logsumexp(logprobs[-1], dim=-1)  # row T-1, renormalized
        p = datum.loss_fn_inputs["target_distribution"].to_torch()[-1]
        total = total + (torch.xlogy(p, p) - p * log_q).sum()  # xlogy: 0 log 0 = 0
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
        scored_row = scored_row_of(datum)
        p = datum.loss_fn_inputs["target_distribution"].to_torch()[scored_row]
        row = logprobs[scored_row]  # [K]
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
