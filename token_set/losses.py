"""The KL divergence over the label set, as a loss for ``forward_backward_custom``.

``kl_over_labels`` is the callable (tinker 0.32.0 or later: it reads the extra key
``target_distribution``); ``set_kl`` is the same KL for one datum in the form
``ServiceClient.create_custom_loss`` traces (tinker 0.36.0 or later). Both read the target
on the row ``build_datum`` scored, whatever that row is, and both return a sum over datums,
like Tinker's ``loss:sum``.

``kl_over_labels(data, logprobs_list)`` is called by the SDK with the batch's datums and one
``logprobs`` tensor per datum, shaped like that datum's ``target_tokens`` (``[T, K]``, never
``[T, vocab_size]``). It returns the scalar sum over datums of KL(p || q), where q is the
model's distribution renormalized over the ``K`` labels at the datum's scored row and p is
that row of ``target_distribution``, and a dict of float metrics. ``torch.xlogy(p, p)`` makes a
label with ``p_k = 0`` add 0. It raises ``ValueError`` when ``target_distribution`` does not hold
one distribution on one row, so a datum it cannot score never trains a silent zero. The SDK
differentiates the loss and sends ``weights = -dloss/dlogprobs`` in a second, cross_entropy
request: one call costs a forward pass and a forward-backward pass.

``set_kl(logprobs, target_distribution)`` is the per-datum form for
``service_client.create_custom_loss(set_kl, {"logprobs": 2, "target_distribution": 2})``: both
inputs rank 2 (``[T, K]``). The SDK traces it with ``torch.fx``, so it cannot branch on values:
it renormalizes every row, and rows where p is 0 add exactly 0. The handle runs in one pass
when it gets a ``loss_id`` from the server, else on your machine in the same two passes as a
callable.
"""

from __future__ import annotations

import torch
from tinker import types


def kl_over_labels(data: list[types.Datum], logprobs_list: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over datums of KL(p || q) at the row build_datum scored: q renormalizes that row's K logprobs."""
    total = torch.zeros(())
    for datum, logprobs in zip(data, logprobs_list, strict=True):  # logprobs: [T, K], never [T, vocab_size]
        p_rows = datum.loss_fn_inputs["target_distribution"].to_torch()  # [T, K]: p on the scored row, 0 elsewhere
        row = int(p_rows.sum(dim=-1).argmax())  # the scored row, wherever build_datum put it
        if abs(float(p_rows[row].sum()) - 1) > 1e-3 or abs(float(p_rows.sum()) - 1) > 1e-3:
            raise ValueError("target_distribution must hold one distribution on one row: build the datum with build_datum")
        log_q = logprobs[row] - torch.logsumexp(logprobs[row], dim=-1)  # renormalized over the K labels
        total = total + (torch.xlogy(p_rows[row], p_rows[row]) - p_rows[row] * log_q).sum()  # xlogy: 0 log 0 = 0
    return total, {"kl:sum": float(total.detach())}


def set_kl(logprobs: torch.Tensor, target_distribution: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The same KL for one datum, traceable by create_custom_loss: both inputs [T, K] (rank 2).
    Every row is renormalized; rows without a target (p = 0) add exactly 0."""
    log_q = logprobs - torch.logsumexp(logprobs, dim=-1, keepdim=True)
    p = target_distribution
    kl = (torch.xlogy(p, p) - p * log_q).sum()
    return kl, {"custom/kl:sum": kl}


def kl_divergence(p, q) -> float:
    """KL(p || q) for two distributions over the labels (``[K]`` each); inf where q misses a label p has."""
    p, q = torch.as_tensor(p), torch.as_tensor(q)
    return float(torch.sum(torch.xlogy(p, p) - torch.xlogy(p, q)))
