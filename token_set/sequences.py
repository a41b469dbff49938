"""Labels of any length, scored exactly: the probability of a label is the probability of its
whole token sequence after the prompt.

For label ``k`` with tokens ``a_1 ... a_n`` after the prompt ``x`` (``T`` positions),
``log P(k) = sum_j log P(a_j | x, a_1 ... a_(j-1))``. A datum whose ``model_input`` is ``x``
followed by a path ``a_1 ... a_m`` scores, on rows ``T - 1`` to ``T + m - 1``, every token of
every label that follows that path: row ``T - 1`` holds the first tokens, and each later row the
next tokens of the labels that share the path so far. A label of ``n`` tokens needs its first
``n - 1`` tokens as input, so an example needs one datum per longest such path (a branch of
the labels' token trie), not one per label. When every label is one token that is one datum,
exactly the one ``build_datum`` makes.

The datums of one example carry, besides ``target_tokens`` and ``weights``, the extra keys
``label_entries`` (each scored label's entries in the datum's flattened ``[T', K']`` logprobs,
``-1`` padded), ``label_index`` (which labels those are), ``label_target`` (the example's ``[K]``
target) and ``example_key`` (one number per example), so that ``kl_over_label_sequences`` can
sum each label's tokens and renormalize over the ``K`` labels across an example's datums. The
``weights`` hold ``p_k`` on every token of label ``k`` (a token that several labels share holds
the sum of their ``p``), so the built-in ``cross_entropy`` on the same datums computes
``-sum_k p_k log P(k)`` in one pass.

Where a label ends: if one label's tokens begin another's (``" joy"`` and ``" joyful"``), the
sequence probability of the shorter one counts every answer that continues it. Such a label set
is refused unless you pass ``end``, the text that closes the answer (the chat template's
end-of-turn token, or a newline); its tokens are then scored too, and ``P(" joy" + end)`` is the
probability that the answer is exactly ``" joy"``.

The extra keys need tinker 0.32.0 or later. There is no loss-handle form: the renormalization
spans an example's datums, and a handle sees one datum at a time.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import torch
from tinker import types

from .datums import build_datum
from .evaluation import forward_logprobs

#: Numbers that group an example's datums in a batch; unique within one process.
_EXAMPLE_KEYS = itertools.count(1)


def label_token_sequences(tokenizer, prompt_tokens: list[int], labels: list[str], separator: str = " ",
                          end: str = "") -> list[list[int]]:
    """Each label's tokens right after ``prompt_tokens``: the tokens of ``separator + label + end``.

    Raises ValueError naming every label that cannot be scored exactly there: the prompt followed
    by it does not tokenize as the prompt followed by its own tokens, two labels have the same
    tokens, or (with ``end=""``) one label's tokens begin another's; pass ``end`` (for example the
    chat template's end-of-turn token) to score where the answer stops.
    """
    prompt_tokens = list(prompt_tokens)
    prompt_text = tokenizer.decode(prompt_tokens)
    sequences, problems = [], []
    for word in labels:
        piece = separator + word + end
        ids = tokenizer.encode(piece, add_special_tokens=False)
        if not word or not ids:
            problems.append(f"{word!r}: an empty label")
        elif tokenizer.encode(prompt_text + piece, add_special_tokens=False) != prompt_tokens + ids:
            problems.append(f"{word!r}: prompt + {piece!r} does not tokenize as prompt + its own tokens "
                            f"{tokenizer.convert_ids_to_tokens(ids)}; change the prompt's ending or the separator")
        sequences.append(ids)
    for (a, seq_a), (b, seq_b) in itertools.combinations(zip(labels, sequences), 2):
        if seq_a == seq_b:
            problems.append(f"{a!r} and {b!r} have the same tokens")
        elif seq_a and seq_b and min(len(seq_a), len(seq_b)) < max(len(seq_a), len(seq_b)) and (
                seq_a[:len(seq_b)] == seq_b or seq_b[:len(seq_a)] == seq_a):
            shorter, longer = (a, b) if len(seq_a) < len(seq_b) else (b, a)
            problems.append(f"{shorter!r} is the start of {longer!r}, so P({shorter!r}) would count {longer!r} too; "
                            "pass end= the text that closes the answer (e.g. the end-of-turn token)")
    if problems:
        raise ValueError("labels that cannot be scored exactly after this prompt:\n  " + "\n  ".join(problems))
    return sequences


@dataclasses.dataclass(frozen=True)
class LabelBranch:
    """One datum's worth of labels: the tokens appended to the prompt, and the labels it scores."""

    path: tuple[int, ...]
    labels: tuple[int, ...]


def label_branches(sequences: list[list[int]]) -> list[LabelBranch]:
    """The datums an example needs: one per longest context path (a label's tokens but its last),
    each label scored in exactly one of them, in label order."""
    contexts = [tuple(seq[:-1]) for seq in sequences]
    longest = []
    for context in contexts:  # in label order, so that the layout is deterministic
        if context not in longest and not any(len(o) > len(context) and o[:len(context)] == context for o in contexts):
            longest.append(context)
    assigned = {path: [] for path in longest}
    for k, context in enumerate(contexts):
        path = next(p for p in longest if p[:len(context)] == context)
        assigned[path].append(k)
    return [LabelBranch(path, tuple(labels)) for path, labels in assigned.items()]


def build_label_datums(model_input: types.ModelInput, target: list[float] | np.ndarray,
                       sequences: list[list[int]]) -> list[types.Datum]:
    """The datums that score every label's whole token sequence after ``model_input``.

    ``target`` holds the ``K`` probabilities in the order of ``sequences`` (from
    ``label_token_sequences``). When every label is one token this is ``[build_datum(...)]``,
    exactly; otherwise one datum per branch of the labels' token trie (see the module's text).
    """
    if all(len(seq) == 1 for seq in sequences):
        return [build_datum(model_input, target, [seq[0] for seq in sequences])]
    p = np.asarray(target, dtype=np.float32)
    if p.shape != (len(sequences),) or (p < 0).any() or abs(float(p.sum()) - 1) > 1e-3:
        raise ValueError(f"target must be {len(sequences)} probabilities summing to 1 (fix the data, or divide by the sum), "
                         f"got {p.shape} summing to {float(p.sum()):.4f}")
    key = next(_EXAMPLE_KEYS)
    datums = []
    for branch in label_branches(sequences):
        datums.append(_branch_datum(model_input, branch, [sequences[k] for k in branch.labels], p, key))
    return datums


def _branch_datum(model_input, branch, branch_sequences, p, key):
    T, depth = model_input.length, max(len(seq) for seq in branch_sequences)
    columns = [[] for _ in range(depth)]  # row T - 1 + j: the distinct j-th tokens, in label order
    for seq in branch_sequences:
        for j, token in enumerate(seq):
            if token not in columns[j]:
                columns[j].append(token)
    width = max(len(row) for row in columns)
    length = T + len(branch.path)
    target_tokens = torch.zeros((length, width), dtype=torch.int64)
    weights = torch.zeros((length, width))
    entries = torch.full((len(branch_sequences), depth), -1, dtype=torch.int64)
    for j, row_tokens in enumerate(columns):
        target_tokens[T - 1 + j, :len(row_tokens)] = torch.tensor(row_tokens)
    for i, (k, seq) in enumerate(zip(branch.labels, branch_sequences)):
        for j, token in enumerate(seq):
            column = columns[j].index(token)
            entries[i, j] = (T - 1 + j) * width + column
            weights[T - 1 + j, column] += float(p[k])  # cross_entropy: p_k on each of label k's tokens
    chunks = list(model_input.chunks) + ([types.EncodedTextChunk(tokens=list(branch.path))] if branch.path else [])
    return types.Datum(model_input=types.ModelInput(chunks=chunks), loss_fn_inputs={
        "target_tokens": target_tokens, "weights": weights,
        "label_entries": types.TensorData.from_torch(entries),
        "label_index": types.TensorData.from_torch(torch.tensor(branch.labels, dtype=torch.int64)),
        "label_target": types.TensorData.from_numpy(p),
        "example_key": types.TensorData.from_torch(torch.tensor([key], dtype=torch.int64))})


def example_label_logprobs(data: list[types.Datum], logprobs_list: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per example in the batch, in order of first appearance: ``(p, log_p)``, both ``[K]``, where
    ``log_p[k]`` is the log-probability of label ``k``'s whole sequence (differentiable through
    ``logprobs_list``). Datums from ``build_datum`` are one example each. Raises ValueError when an
    example's labels are not each scored exactly once (a datum of the example left out of the batch)."""
    examples: dict = {}
    for datum, logprobs in zip(data, logprobs_list, strict=True):
        inputs = datum.loss_fn_inputs
        if "label_entries" not in inputs:  # one token per label: the row build_datum scored
            p_rows = inputs["target_distribution"].to_torch()
            row = int(p_rows.sum(dim=-1).argmax())
            examples[("datum", len(examples))] = (p_rows[row], [logprobs[row]], [torch.arange(p_rows.shape[-1])])
            continue
        entries = inputs["label_entries"].to_torch().long()
        flat = logprobs.reshape(-1)
        label_logprobs = torch.where(entries >= 0, flat[entries.clamp(min=0)], torch.zeros(())).sum(dim=-1)
        key = ("example", int(inputs["example_key"].to_torch().reshape(-1)[0]))
        p = inputs["label_target"].to_torch()
        parts = examples.setdefault(key, (p, [], []))
        parts[1].append(label_logprobs)
        parts[2].append(inputs["label_index"].to_torch().long())
    results = []
    for p, values, indices in examples.values():
        index = torch.cat(indices)
        if sorted(index.tolist()) != list(range(len(p))):
            raise ValueError("an example's labels are not each scored once in this batch: send all the datums "
                             "build_label_datums made for an example together")
        log_p = torch.zeros(len(p)).index_add(0, index, torch.cat(values))
        results.append((p, log_p))
    return results


def kl_over_label_sequences(data: list[types.Datum], logprobs_list: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over examples of KL(p || q), q the labels' exact sequence probabilities renormalized over
    the K labels: the loss for ``forward_backward_custom`` on datums from ``build_label_datums``
    (datums from ``build_datum`` too, one example each)."""
    total = torch.zeros(())
    for p, log_p in example_label_logprobs(data, logprobs_list):
        log_q = log_p - torch.logsumexp(log_p, dim=-1)
        total = total + (torch.xlogy(p, p) - p * log_q).sum()
    return total, {"kl:sum": float(total.detach())}


def label_logprobs(training_client, model_input: types.ModelInput, label_tokens: list[list[int]]) -> list[float]:
    """The exact log-probability of each label's whole token sequence after ``model_input`` (label
    tokens as lists of ids), from one ``forward`` call: one datum per branch of the labels' trie."""
    uniform = np.full(len(label_tokens), 1 / len(label_tokens), dtype=np.float32)
    data = build_label_datums(model_input, uniform, label_tokens)
    [(_, log_p)] = example_label_logprobs(data, forward_logprobs(training_client, data))
    return log_p.tolist()


def evaluate_label_sequences(training_client, data: list[types.Datum]) -> dict[str, np.ndarray]:
    """One forward pass; per example: q ([N, K], the exact sequence probabilities renormalized), the KL
    over the set ([N]), the mass on the set ([N], the probability that the answer is one of the labels)
    and whether q's top label is the target's ([N], bool)."""
    q_rows, kls, masses, top_agrees = [], [], [], []
    for p, log_p in example_label_logprobs(data, forward_logprobs(training_client, data)):
        log_mass = torch.logsumexp(log_p, dim=-1)
        log_q = log_p - log_mass
        q_rows.append(log_q.exp().numpy())
        kls.append(float((torch.xlogy(p, p) - p * log_q).sum()))
        masses.append(float(log_mass.exp()))
        top_agrees.append(bool(log_q.argmax() == p.argmax()))
    return {"q": np.array(q_rows), "kl": np.array(kls), "mass": np.array(masses), "top_agrees": np.array(top_agrees)}
