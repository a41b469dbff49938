"""Evaluation with ``forward``: the KL over the label set, the mass on it, top-label agreement,
and the two baselines a trained model must beat (uniform, and the training targets' mean)."""

from __future__ import annotations

import numpy as np
import torch
from tinker import types

from .datums import server_datum
from .losses import kl_divergence


def forward_logprobs(training_client, data: list[types.Datum]) -> list[torch.Tensor]:
    """One forward pass; each datum's logprobs, shaped like its target_tokens."""
    result = training_client.forward([server_datum(d) for d in data], "cross_entropy").result()
    return [out["logprobs"].to_torch() for out in result.loss_fn_outputs]


def evaluate_examples(training_client, data: list[types.Datum]) -> dict[str, np.ndarray]:
    """One forward pass; per example, at the row build_datum scored: the renormalized distribution
    q ([N, K]), the KL over the set ([N]), the mass on the set ([N]) and whether q's top label is
    the target's ([N], bool)."""
    result = training_client.forward([server_datum(d) for d in data], "cross_entropy").result()
    q_rows, kls, masses, top_agrees = [], [], [], []
    for datum, output in zip(data, result.loss_fn_outputs, strict=True):
        p_rows = datum.loss_fn_inputs["target_distribution"].to_torch()  # [T, K]: p on the scored row
        row = int(p_rows.sum(dim=-1).argmax())  # the scored row, as kl_over_labels finds it
        logprobs = output["logprobs"].to_torch()[row]
        log_mass = torch.logsumexp(logprobs, dim=-1)
        log_q = logprobs - log_mass
        p = p_rows[row]
        q_rows.append(log_q.exp().numpy())
        kls.append(float((torch.xlogy(p, p) - p * log_q).sum()))
        masses.append(float(log_mass.exp()))
        top_agrees.append(bool(log_q.argmax() == p.argmax()))
    return {"q": np.array(q_rows), "kl": np.array(kls), "mass": np.array(masses), "top_agrees": np.array(top_agrees)}


def evaluate(training_client, data: list[types.Datum]) -> tuple[float, float]:
    """The mean KL over the set and the mean mass on the set, from one forward pass."""
    per_example = evaluate_examples(training_client, data)
    return float(per_example["kl"].mean()), float(per_example["mass"].mean())


def baseline_kls(targets: np.ndarray, training_targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per example ([N]), the KL to ``targets`` ([N, K]) of two predictions that need no model: the
    uniform distribution, and the mean of ``training_targets`` ([M, K]). The prior's KL is inf for an
    example whose target uses a label no training target does."""
    targets, training_targets = np.asarray(targets), np.asarray(training_targets)
    uniform = np.full(targets.shape[1], 1 / targets.shape[1])
    prior = training_targets.mean(axis=0)
    return {"uniform": np.array([kl_divergence(p, uniform) for p in targets]),
            "training prior": np.array([kl_divergence(p, prior) for p in targets])}


def set_summary(row_logprobs: torch.Tensor, labels: list[str], top: int = 3) -> str:
    """Mass on the set and the top labels of the renormalized distribution, as text; ``row_logprobs``
    is one row ([K]) of logprobs, in ``labels`` order."""
    row_logprobs = torch.as_tensor(row_logprobs)
    q = torch.softmax(row_logprobs, dim=-1)
    mass = float(torch.exp(torch.logsumexp(row_logprobs, dim=-1)))
    best = torch.argsort(q, descending=True)[:top].tolist()
    return f"mass on set {mass:.3f}; top: " + ", ".join(f"{labels[i]} {float(q[i]):.2f}" for i in best)
