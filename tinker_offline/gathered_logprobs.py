"""Log-probabilities of K chosen token ids per row, without keeping [rows, vocab] logits.

Tinker returns logprobs with the shape of ``target_tokens``: ``[T]`` or ``[T, K]``. Computing
them needs every row's log-softmax normaliser, but the backward pass only needs the rows
whose logprobs received a gradient: with cross_entropy that is the rows with non-zero
weight, usually one row per datum. This autograd function keeps the hidden states and
each row's log-normaliser, and recomputes logits only for those rows in the backward
pass, in chunks, so memory stays O(chunk x vocab) even for a 3,000-token prompt.

Several output rows may read one hidden state (``row_of``): the rows of a prompt prefix that
a batch's datums share (``lora.LocalModel``) are computed, and normalised, once.
"""

from __future__ import annotations

import torch

ROWS_PER_CHUNK = 256


class _GatheredLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, unembedding, token_ids, row_of):
        log_normalisers = torch.empty(hidden.shape[0], dtype=hidden.dtype, device=hidden.device)
        for start in range(0, hidden.shape[0], ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            log_normalisers[rows] = torch.logsumexp(hidden[rows] @ unembedding.T, dim=-1)
        logprobs = torch.empty(token_ids.shape, dtype=hidden.dtype, device=hidden.device)
        for start in range(0, token_ids.shape[0], ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            # Only the K chosen logits of each row: hidden . unembedding[id].
            chosen = torch.einsum("rh,rkh->rk", hidden[row_of[rows]], unembedding[token_ids[rows]])
            logprobs[rows] = chosen - log_normalisers[row_of[rows], None]
        ctx.save_for_backward(hidden, unembedding, token_ids, row_of, log_normalisers)
        return logprobs

    @staticmethod
    def backward(ctx, grad_logprobs):
        hidden, unembedding, token_ids, row_of, log_normalisers = ctx.saved_tensors
        want_hidden, want_unembedding, _, _ = ctx.needs_input_grad
        grad_hidden = torch.zeros_like(hidden) if want_hidden else None
        grad_unembedding = torch.zeros_like(unembedding) if want_unembedding else None
        active = (grad_logprobs != 0).any(dim=-1).nonzero().squeeze(-1)
        for start in range(0, active.numel(), ROWS_PER_CHUNK):
            rows = active[start : start + ROWS_PER_CHUNK]
            h = hidden[row_of[rows]]
            g = grad_logprobs[rows]
            probs = torch.exp(h @ unembedding.T - log_normalisers[row_of[rows], None])
            # d/dlogits of sum_k g_k * (logit[id_k] - logsumexp(logits)).
            grad_logits = probs * -g.sum(dim=-1, keepdim=True)
            grad_logits.scatter_add_(1, token_ids[rows], g)
            if want_hidden:
                # Summed, not assigned: a shared row gets the gradient of every row that reads it.
                grad_hidden.index_add_(0, row_of[rows], grad_logits @ unembedding)
            if want_unembedding:
                grad_unembedding += grad_logits.T @ h
        return grad_hidden, grad_unembedding, None, None


def gathered_logprobs(
    hidden: torch.Tensor, unembedding: torch.Tensor, token_ids: torch.Tensor, row_of: torch.Tensor | None = None
) -> torch.Tensor:
    """``log_softmax(hidden[row_of] @ unembedding.T)`` gathered at ``token_ids``.

    hidden: [U, H]; unembedding: [V, H]; token_ids: [N, K] int64; row_of: [N] int64, the
    hidden row each output row reads (default: row n reads hidden row n, N = U). Returns [N, K].
    """
    if row_of is None:
        row_of = torch.arange(hidden.shape[0], device=hidden.device)
    return _GatheredLogprobs.apply(hidden, unembedding, token_ids, row_of)
