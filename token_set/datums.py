"""Datums that score a fixed set of K label tokens at one row of a prompt.

Shapes: ``T`` is ``model_input.length`` (image positions included), ``K`` the number of
labels. Row ``t`` of ``target_tokens``, ``weights`` and the returned ``logprobs`` scores the
token after input position ``t``, so the token right after a prompt is row ``T - 1``.

``build_datum(model_input, target, label_ids, scored_row=None)`` takes a ``types.ModelInput``
(text, or chunks with images), the target ``p`` as ``K`` probabilities in the order of
``label_ids``, the ``K`` label ids, and the row to score (default ``T - 1``; a transcript with
the answer already in it scores an earlier row). It raises ``ValueError`` unless ``p`` has
``K`` entries, none negative, summing to 1 within 1e-3: the built-in ``cross_entropy`` loss
equals the KL plus a mass term only for such a ``p``. It returns a ``types.Datum`` with three
``[T, K]`` tensors, zero off the scored row: ``target_tokens`` (int64, the label ids on that
row, id 0 elsewhere), ``weights`` (float32, ``p`` on that row) and the extra key
``target_distribution`` (``p`` again, read by the KL losses). ``types.Datum`` stores the first
two, passed as 2-D torch tensors, in CSR form, and ``TensorData.from_torch_sparse`` does the
same for the third, so a 3,000-position prompt stays a small request.

One datum serves every route: ``forward_backward_custom(data, kl_over_labels)`` takes it as it
is (the SDK reads the extra key on your machine and sends only ``target_tokens`` and
``weights``); ``forward_backward([server_datum(d) for d in data], "cross_entropy")`` reads
``p`` from the weights; ``server_datum`` strips the extra key for ``forward`` and the built-in
loss. The extra key needs tinker 0.32.0 or later.
"""

from __future__ import annotations

import numpy as np
import torch
from tinker import types


def target_vector(target: dict[str, float], labels: list[str]) -> np.ndarray:
    """A target dict (label -> probability) as a float32 ``[K]`` vector in ``labels`` order;
    labels left out are 0. Raises ValueError for a label not in ``labels`` (a typo would otherwise
    drop its probability silently)."""
    unknown = sorted(set(target) - set(labels))
    if unknown:
        raise ValueError(f"target names {unknown}, which are not labels; the labels are {list(labels)}")
    return np.array([target.get(word, 0.0) for word in labels], dtype=np.float32)


def build_datum(model_input: types.ModelInput, target: list[float] | np.ndarray, label_ids: list[int], scored_row: int | None = None) -> types.Datum:
    """[T, K] target_tokens with the label ids on row T-1 (or scored_row), target p as weights, p again."""
    T, K = model_input.length, len(label_ids)  # T counts image positions too
    row = T - 1 if scored_row is None else scored_row
    p = torch.tensor(np.asarray(target, dtype=np.float32))
    if p.shape != (K,) or bool((p < 0).any()) or abs(float(p.sum()) - 1) > 1e-3:
        raise ValueError(f"target must be {K} probabilities summing to 1 (fix the data, or divide by the sum), got {tuple(p.shape)} summing to {float(p.sum()):.4f}")
    target_tokens = torch.zeros((T, K), dtype=torch.int64)  # 2-D torch tensors: sent as CSR
    target_tokens[row] = torch.tensor(label_ids)  # row t scores the token after input t
    weights = torch.zeros((T, K))  # cross_entropy reads p here; the KL callable reads target_distribution
    weights[row] = p
    return types.Datum(model_input=model_input, loss_fn_inputs={
        "target_tokens": target_tokens, "weights": weights,
        "target_distribution": types.TensorData.from_torch_sparse(weights)})  # read by your loss


def server_datum(datum: types.Datum) -> types.Datum:
    """The datum as cross_entropy takes it: only target_tokens and weights (when present)."""
    inputs = {key: datum.loss_fn_inputs[key] for key in ("target_tokens", "weights") if key in datum.loss_fn_inputs}
    return types.Datum(model_input=datum.model_input, loss_fn_inputs=inputs)


def scored_row_of(datum: types.Datum) -> int:
    """The one row of ``target_distribution`` that holds the target (``build_datum`` puts it there).
    Raises ValueError when no row or several rows hold one."""
    p = datum.loss_fn_inputs["target_distribution"].to_torch()
    rows = torch.nonzero(p.reshape(p.shape[0], -1).any(dim=-1)).flatten().tolist()
    if len(rows) != 1:
        raise ValueError(f"expected the target on exactly one row, found {len(rows)}: {rows[:5]} (build the datum with build_datum)")
    return rows[0]


