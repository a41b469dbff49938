"""What is wrong with a datum before you send it: the checks of the #703 page's checklist."""

from __future__ import annotations

import numpy as np
from tinker import types


def datum_problems(datum: types.Datum, label_ids: list[int]) -> list[str]:
    """Problems with a set-scoring datum, as a list of strings (empty: all checks passed).

    Checks that ``target_tokens`` has ``T = model_input.length`` rows, that ``weights`` are
    present and shaped like it, that exactly one row has non-zero weights and holds
    ``label_ids``, and that ``target_distribution`` (when present) is one distribution over the
    K labels, on that same row.
    """
    target_tokens = datum.loss_fn_inputs["target_tokens"].to_numpy()
    T, K = datum.model_input.length, len(label_ids)
    problems = []
    if target_tokens.shape[0] != T:
        problems.append(f"target_tokens has {target_tokens.shape[0]} rows, model_input.length is {T} "
                        "(count T with model_input.length: images take positions)")
    weights = datum.loss_fn_inputs.get("weights")
    if weights is None:
        problems.append("no weights: pass them, shaped like target_tokens")
        return problems
    weights = weights.to_numpy()
    if weights.shape != target_tokens.shape:
        problems.append(f"weights are {weights.shape}, target_tokens {target_tokens.shape}: give them one shape")
        return problems
    rows = np.flatnonzero(weights.reshape(weights.shape[0], -1).any(axis=-1)).tolist()
    if len(rows) != 1:
        problems.append(f"{len(rows)} rows have non-zero weights (want 1): {rows[:5]}"
                        + (" (cross_entropy trains every weighted row)" if len(rows) > 1 else ""))
    elif np.atleast_1d(target_tokens[rows[0]]).tolist() != list(label_ids):
        problems.append(f"row {rows[0]}, the weighted row, does not hold the {K} label ids")
    if "target_distribution" in datum.loss_fn_inputs:
        p = datum.loss_fn_inputs["target_distribution"].to_numpy()
        p_rows = np.flatnonzero(p.reshape(p.shape[0], -1).any(axis=-1)).tolist()
        if p.shape != target_tokens.shape or (p < 0).any() or abs(p.sum() - 1) > 1e-3 or p_rows != rows:
            problems.append(f"target_distribution is not one distribution over the {K} labels on the weighted "
                            "row, shaped like target_tokens")
    return problems
