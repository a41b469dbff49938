"""The LoRA model behind every client: its construction, and the passes that compute
Tinker-shaped logprobs and gradients over it.

``build_lora_model`` wraps the shared, frozen base model (``model_store``) in fresh peft LoRA
adapters on the modules that ``lora_target_modules`` names (Tinker's ``train_attn``,
``train_mlp``, ``train_unembed``). ``LocalModel`` is what a training client trains:
``run_micro_batches`` is the one loop over micro-batches that every forward and
forward/backward request runs. ``AdapterSnapshot`` is saved LoRA weights: what a sampling
client of trained weights is built from.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Callable, Sequence

import torch

from . import model_store
from .gathered_logprobs import gathered_logprobs
from .validation import CheckedDatum

ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP_PROJECTIONS = ["gate_proj", "up_proj", "down_proj"]
UNEMBEDDING = ["lm_head"]

#: peft's scaling numerator: each adapter adds (32 / rank) * B @ A to its module's weight.
LORA_ALPHA = 32

#: Padded tokens per forward pass; longer requests are split into micro-batches whose
#: gradients are summed, which is exact because every loss here is a sum over datums.
DEFAULT_MAX_TOKENS_PER_BATCH = 2048

#: The fewest shared leading tokens worth a pass of their own: below it the second decoder
#: call costs more than it saves.
MIN_SHARED_PREFIX = 8

#: What one more decoder pass costs, in padded tokens: SmolLM2-135M's fixed cost per call
#: (about 50 ms on 2 CPU cores) is that of about 40 more positions. Used by padding_groups.
PASS_COST_TOKENS = 40

#: ``batch_loss(indices, logprobs)``: the loss of the data at ``indices`` (one micro-batch),
#: given their logprobs; it must be a sum over those datums.
BatchLoss = Callable[[list[int], list[torch.Tensor]], torch.Tensor]


def lora_target_modules(train_mlp: bool, train_attn: bool, train_unembed: bool) -> list[str]:
    """The module names that get adapters: attention projections, MLP projections and
    lm_head, as Tinker's three scope options select them. ValueError when none is selected."""
    targets = (
        (ATTENTION_PROJECTIONS if train_attn else [])
        + (MLP_PROJECTIONS if train_mlp else [])
        + (UNEMBEDDING if train_unembed else [])
    )
    if not targets:
        raise ValueError("train_mlp, train_attn and train_unembed are all False: nothing to train")
    return targets


def build_lora_model(base: model_store.BaseModel, rank: int, seed: int | None, targets: list[str]) -> torch.nn.Module:
    """The base model with fresh LoRA adapters of ``rank`` on ``targets`` (B = 0, so it
    starts equal to the base); ``seed`` seeds torch's global RNG for the A matrices."""
    import peft

    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive integer, got {rank!r}")
    if seed is not None:
        torch.manual_seed(seed)
    model = model_store.build_causal_lm(base)
    config = peft.LoraConfig(r=rank, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=targets)
    with warnings.catch_warnings():
        # LoRA on lm_head adapts only the output projection, never the tied input
        # embedding: that is what train_unembed means, so peft's tying warning is moot.
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, config)


def unembedding_matrix(lm_head: torch.nn.Module) -> torch.Tensor:
    """The [vocab, hidden] output projection, LoRA delta included when lm_head has one."""
    if hasattr(lm_head, "get_delta_weight"):
        adapter = lm_head.active_adapters[0]
        return lm_head.base_layer.weight + lm_head.get_delta_weight(adapter)
    return lm_head.weight


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens a batch's prompts share and ``LocalModel`` computes once: 0
    for one prompt, or when they share fewer than ``MIN_SHARED_PREFIX`` tokens. Each prompt
    keeps at least one token of its own."""
    if len(prompts) < 2:
        return 0
    shared = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for prompt in prompts[1:]:
        shared = next((i for i in range(shared) if prompt[i] != first[i]), shared)
    return shared if shared >= MIN_SHARED_PREFIX else 0


def padding_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indices of ``lengths`` in groups that each run as one padded pass: the grouping of the
    sorted lengths with the least cost, a pass costing ``PASS_COST_TOKENS`` plus its rows
    times its longest length. Equal or close lengths share a pass; a few long prompts get
    their own instead of padding every short one to their length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    # best[j]: the least cost of the first j sorted prompts; cut[j]: where its last group starts.
    best, cut = [0.0], [0]
    for j in range(1, len(order) + 1):
        costs = [best[i] + PASS_COST_TOKENS + (j - i) * lengths[order[j - 1]] for i in range(j)]
        cut.append(min(range(j), key=costs.__getitem__))
        best.append(costs[cut[-1]])
    groups, j = [], len(order)
    while j:
        groups.insert(0, order[cut[j] : j])
        j = cut[j]
    return groups


@dataclasses.dataclass(frozen=True)
class AdapterSnapshot:
    """Saved LoRA weights: what a sampling client of trained weights is built from."""

    base_model: str
    rank: int
    targets: tuple[str, ...]
    adapter: dict[str, torch.Tensor]

    def load(self) -> torch.nn.Module:
        """A peft model of the base model with these adapter weights."""
        model = build_lora_model(model_store.load_base_model(self.base_model), self.rank, None, list(self.targets))
        missing = set(self.adapter) - set(model.state_dict())
        if missing:
            raise RuntimeError(f"adapter tensors do not match the model: {sorted(missing)[:3]}")
        model.load_state_dict(self.adapter, strict=False)
        return model


class LocalModel:
    """A LoRA-wrapped causal LM that computes Tinker-shaped logprobs and their gradients."""

    def __init__(self, base_model: str, rank: int, targets: Sequence[str], peft_model: torch.nn.Module,
                 max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH):
        self.base_model = base_model
        self.rank = rank
        self.targets = tuple(targets)
        self.peft_model = peft_model
        causal_lm = peft_model.get_base_model()
        self.decoder = causal_lm.model
        self.lm_head = causal_lm.lm_head
        self.vocab_size = causal_lm.config.vocab_size
        self.max_tokens_per_batch = max_tokens_per_batch
        self.trainable = [p for p in peft_model.parameters() if p.requires_grad]
        self.device = self.trainable[0].device  # where the base weights are (model_store.compute_device)

    @classmethod
    def fresh(cls, base_model: str, rank: int, seed: int | None, targets: list[str],
              max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH) -> "LocalModel":
        """``base_model`` with fresh adapters (see ``build_lora_model``)."""
        peft_model = build_lora_model(model_store.load_base_model(base_model), rank, seed, targets)
        return cls(base_model, rank, targets, peft_model, max_tokens_per_batch)

    def snapshot(self) -> AdapterSnapshot:
        """A copy of the current adapter weights."""
        adapter = {k: v.detach().clone() for k, v in self.peft_model.state_dict().items() if "lora_" in k}
        return AdapterSnapshot(self.base_model, self.rank, self.targets, adapter)

    def micro_batches(self, data: Sequence[CheckedDatum]) -> list[list[int]]:
        """Consecutive datum indices grouped so each padded batch fits the token budget."""
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i, datum in enumerate(data):
            length = len(datum.input_ids)
            if current and max(longest, length) * (len(current) + 1) > self.max_tokens_per_batch:
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def hidden_states(self, prompts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's last hidden states of every position of every prompt, as unique rows
        ``[U, H]`` and the row each position reads (``[sum of lengths]``, prompt after prompt).

        The longest prefix the prompts share (the system prompt and chat template, on the
        book's data) is run once, and the rest of each prompt attends to its cached keys and
        values. The rests run in groups of similar length (``padding_groups``), so a few long
        prompts (images) do not pad every short one. Gradients through the shared rows are
        the sums over the prompts that read them, so every result equals a pass over each
        prompt in full, up to float rounding.
        """
        lengths = [len(p) for p in prompts]
        shared = shared_prefix_length(prompts)
        prefix_rows = torch.empty(0, self.decoder.config.hidden_size, device=self.device)
        prefix_cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        if shared:
            prefix = torch.tensor(list(prompts[0][:shared]), device=self.device)[None]
            out = self.decoder(input_ids=prefix, use_cache=True)
            prefix_rows = out.last_hidden_state[0]
            prefix_cache = [(layer.keys, layer.values) for layer in out.cache.layers]
        rest = [n - shared for n in lengths]
        own_rows: list[torch.Tensor] = [None] * len(prompts)  # type: ignore[list-item]
        for group in padding_groups(rest):
            hidden = self._run_after_prefix([prompts[i][shared:] for i in group], shared, prefix_cache)
            for row, i in enumerate(group):
                own_rows[i] = hidden[row, : rest[i]]
        rows = torch.cat([prefix_rows, *own_rows])
        starts = itertools.accumulate(rest, initial=shared)  # where each prompt's own rows begin
        row_of = torch.cat([torch.cat([torch.arange(shared), torch.arange(start, start + n)])
                            for start, n in zip(starts, rest)])
        return rows, row_of.to(self.device)

    def _run_after_prefix(self, rests: Sequence[Sequence[int]], shared: int,
                          prefix_cache: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One padded decoder pass over ``rests``, at positions ``shared`` onwards, attending
        to the prefix's keys and values (one copy per row; none when ``shared`` is 0)."""
        from transformers import DynamicCache

        cache = None
        if shared:
            cache = DynamicCache(config=self.decoder.config)
            for layer, (keys, values) in enumerate(prefix_cache):
                cache.update(keys.expand(len(rests), -1, -1, -1), values.expand(len(rests), -1, -1, -1), layer)
        lengths = [len(r) for r in rests]
        longest = max(lengths)
        input_ids = torch.zeros(len(rests), longest, dtype=torch.long)
        for row, tokens in enumerate(rests):
            input_ids[row, : lengths[row]] = torch.tensor(list(tokens))
        # Right padding never changes a causal model's outputs at real positions; the mask
        # is only needed (and only paid for) when lengths differ.
        attention_mask = None
        if min(lengths) != longest:
            attention_mask = (torch.arange(shared + longest)[None, :] < shared + torch.tensor(lengths)[:, None]).long()
            attention_mask = attention_mask.to(self.device)
        return self.decoder(
            input_ids=input_ids.to(self.device), attention_mask=attention_mask, cache=cache,
            position_ids=torch.arange(shared, shared + longest, device=self.device)[None],
        ).last_hidden_state

    def logprobs(self, batch: Sequence[CheckedDatum]) -> list[torch.Tensor]:
        """Each datum's logprobs of its target_tokens, shaped like them ([T] or [T, K]), on
        the CPU (where losses read them) whatever the model's device; differentiable when grad
        mode is on."""
        lengths = [len(d.input_ids) for d in batch]
        rows, row_of = self.hidden_states([d.input_ids for d in batch])
        # One gather over every datum's rows: with a LoRA'd lm_head each call's backward
        # builds a [vocab, hidden] gradient, so a call per datum would pay that per datum.
        ids_per_datum = [d.target_tokens.reshape(n, -1) for d, n in zip(batch, lengths)]
        widest = max(ids.shape[1] for ids in ids_per_datum)
        token_ids = torch.zeros(sum(lengths), widest, dtype=torch.long)
        starts = [0, *itertools.accumulate(lengths)]
        for ids, start in zip(ids_per_datum, starts):
            token_ids[start : start + ids.shape[0], : ids.shape[1]] = ids
        logprobs = gathered_logprobs(rows, unembedding_matrix(self.lm_head), token_ids.to(self.device), row_of).cpu()
        return [
            logprobs[start : start + ids.shape[0], : ids.shape[1]].reshape(d.target_tokens.shape)
            for d, ids, start in zip(batch, ids_per_datum, starts)
        ]

    def run_micro_batches(
        self, data: Sequence[CheckedDatum], batch_loss: BatchLoss, with_grad: bool
    ) -> tuple[list[torch.Tensor], float, list[torch.Tensor] | None]:
        """Every datum's logprobs (detached, shaped like its target_tokens), the sum of
        ``batch_loss`` over the micro-batches, and, when ``with_grad``, the summed gradients
        of the trainable tensors (not yet applied; see ``accumulate``)."""
        logprobs: list[torch.Tensor] = [None] * len(data)  # type: ignore[list-item]
        loss_sum = 0.0
        gradients = [torch.zeros_like(p) for p in self.trainable] if with_grad else None
        for indices in self.micro_batches(data):
            with torch.set_grad_enabled(with_grad):
                batch_logprobs = self.logprobs([data[i] for i in indices])
                loss = batch_loss(indices, batch_logprobs)
            loss_sum += float(loss.detach())
            if with_grad and loss.requires_grad:
                for total, g in zip(gradients, torch.autograd.grad(loss, self.trainable, allow_unused=True)):
                    if g is not None:  # None: the loss does not reach that tensor
                        total += g
            for i, lp in zip(indices, batch_logprobs):
                logprobs[i] = lp.detach()
        return logprobs, loss_sum, gradients

    def accumulate(self, gradients: Sequence[torch.Tensor]) -> None:
        """Add ``gradients`` (one per trainable tensor) to the accumulated ``.grad``s."""
        for param, grad in zip(self.trainable, gradients, strict=True):
            param.grad = grad.clone() if param.grad is None else param.grad + grad
