"""The three training routes: what one step submits, and the train metrics read from its
output.

- ``kl``: ``forward_backward_custom`` with ``token_set.kl_over_label_sequences``, the KL from
  the target to the model's distribution renormalized over the labels, each label scored by its
  whole token sequence (two passes per step; with one-token labels it is ``kl_over_labels``);
- ``cross_entropy``: the built-in loss with the target as ``weights`` (one pass; it also
  raises the mass on the labels, and equals the KL minus log-mass plus the target's entropy
  when the target sums to 1);
- ``kl_mass``: the KL plus ``mass_weight`` times minus the log of the mass on the labels, in
  the callable (two passes): the renormalized target, and an answer that is a label when
  you sample.
"""

from __future__ import annotations

import torch
from tinker import types

from token_set import example_label_logprobs, kl_over_label_sequences, server_datum


def kl_plus_mass(mass_weight):
    """The callable for route kl_mass: sum over datums of KL(p || q) - mass_weight * log m."""

    def loss(data, logprobs_list):
        kl, _ = kl_over_label_sequences(data, logprobs_list)
        neg_log_mass = -sum(torch.logsumexp(log_p, dim=-1) for _, log_p in example_label_logprobs(data, logprobs_list))
        total = kl + mass_weight * neg_log_mass
        return total, {"kl:sum": float(kl.detach()), "neg_log_mass:sum": float(neg_log_mass.detach())}

    return loss


def submit_step(training_client, data, route, learning_rate, mass_weight):
    """Submit one step (its forward-backward, then its optimizer step) without waiting."""
    if route == "cross_entropy":
        forward_backward = training_client.forward_backward([server_datum(d) for d in data], "cross_entropy")
    else:
        loss = kl_over_label_sequences if route == "kl" else kl_plus_mass(mass_weight)
        forward_backward = training_client.forward_backward_custom(data, loss)
    optim = training_client.optim_step(types.AdamParams(learning_rate=learning_rate))
    return forward_backward, optim


def step_metrics(data, forward_backward_output):
    """The batch's mean KL over the labels and mean mass on them per example, before the step
    (every route's output holds each datum's logprobs, shaped like its target_tokens), and its
    mean loss per example."""
    logprobs_list = [output["logprobs"].to_torch() for output in forward_backward_output.loss_fn_outputs]
    examples = example_label_logprobs(data, logprobs_list)
    kl, _ = kl_over_label_sequences(data, logprobs_list)
    mass = sum(float(torch.logsumexp(log_p, dim=-1).exp()) for _, log_p in examples)
    return {"train_kl": float(kl) / len(examples), "train_mass": mass / len(examples),
            "loss": forward_backward_output.metrics["loss:sum"] / len(examples), "examples": len(examples)}
