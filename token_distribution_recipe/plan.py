"""The plan printed before training: the examples, the distribution of ``T``, the passes per
step, the positions processed per epoch, and each batch's request size against the SDK's
limits.

Request sizes are the SDK's own estimate (tinker 0.38, ``lib/public_interfaces/
training_client.py``: ``_estimate_datum_bytes_count_proto``, 4 bytes per token, an image's
encoded bytes, each tensor's values plus 8 bytes per CSR index) and its own splitting of a
batch into requests (``TrainingClient._chunked_requests_generator``) under the default
limits of ``types.ClientConfigResponse`` (``fwdbwd_max_chunk_len`` datums and
``fwdbwd_max_chunk_bytes_count`` bytes per request); a server may send other limits.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
from tinker import types
from tinker.lib.public_interfaces.training_client import TrainingClient as SdkTrainingClient
from tinker.lib.public_interfaces.training_client import _estimate_datum_bytes_count_proto

from token_set import server_datum

#: Model passes per training step, by route: a callable custom loss runs a forward pass,
#: then a cross_entropy forward-backward (TrainingClient.forward_backward_custom).
PASSES_PER_STEP = {"kl": 2, "kl_mass": 2, "cross_entropy": 1}
LIMITS = types.ClientConfigResponse()


def sdk_requests(data):
    """How the SDK splits `data` (as sent: ``server_datum``) into requests: a list of
    (datums, estimated bytes)."""
    holder = SimpleNamespace(holder=SimpleNamespace(_client_config=LIMITS))
    return [(len(chunk.data), chunk.estimated_bytes_count)
            for chunk in SdkTrainingClient._chunked_requests_generator(holder, [server_datum(d) for d in data])]


def datum_bytes(datum):
    """The SDK's estimate for `datum` as sent (target_tokens and weights only)."""
    return _estimate_datum_bytes_count_proto(server_datum(datum))


@dataclasses.dataclass
class Plan:
    train_count: int
    eval_count: int
    labels: list
    lengths: np.ndarray
    image_positions: np.ndarray
    batch_size: int
    steps_per_epoch: int
    epochs: int
    route: str
    largest_batch_bytes: int
    largest_batch_requests: int
    largest_datum_bytes: int
    eval_positions: int
    multi_token_labels: int  # labels of several tokens after the prompt's ending
    datums_per_example: int  # one per branch of the labels' token tree (1 when every label is one token)
    positions: np.ndarray  # positions each training example sends: T per datum, plus each branch's tokens
    eval_lengths: np.ndarray = None  # T per evaluation example
    eval_image_positions: np.ndarray = None  # image positions per evaluation example (all its images together)
    max_steps: int | None = None  # the run's length in steps when set, else epochs x steps_per_epoch

    @property
    def total_steps(self):
        return self.max_steps if self.max_steps is not None else self.steps_per_epoch * self.epochs

    @property
    def passes(self):
        return PASSES_PER_STEP[self.route]

    def lines(self, prefill, eval_every):
        lengths, images = self.lengths, self.image_positions
        # before training, after every eval_every-th step short of the last, and at the end
        evals = 2 + ((self.total_steps - 1) // eval_every if eval_every else 0)

        def lengths_text(values):
            return f"min {values.min():,}, median {int(np.median(values)):,}, max {values.max():,}"

        def images_text(values):
            with_images = int((values > 0).sum())
            if not with_images:
                return f"none of {len(values)} examples has images"
            return (f"{with_images} of {len(values)} example(s) with images, "
                    f"at most {values.max():,} image positions per example (its images together)")

        has_eval = self.eval_lengths is not None and len(self.eval_lengths)
        return [
            f"examples: {self.train_count} to train on, {self.eval_count} to evaluate; "
            f"{len(self.labels)} labels after {prefill!r}",
            f"T per example, in positions: training {lengths_text(lengths)}"
            + (f"; evaluation {lengths_text(self.eval_lengths)}" if has_eval else ""),
            f"images: training {images_text(images)}"
            + (f"; evaluation {images_text(self.eval_image_positions)}" if has_eval else ""),
            f"labels: {self.multi_token_labels} of {len(self.labels)} are several tokens, so each example takes "
            f"{self.datums_per_example} datum(s) (one per branch of the labels' token tree) and "
            f"{int(self.positions.sum()) - int(lengths.sum()):,} more positions in all than its T"
            if self.multi_token_labels else f"labels: all {len(self.labels)} are one token: one datum per example",
            (f"steps: {self.steps_per_epoch} per epoch (batch {self.batch_size}) x {self.epochs} epoch(s) = "
             if self.max_steps is None else
             f"steps: {self.steps_per_epoch} per epoch (batch {self.batch_size}); max_steps = ")
            + f"{self.total_steps}; route {self.route}: {self.passes} model pass(es) per step",
            f"positions processed per epoch: {int(self.positions.sum()):,} x {self.passes} = {int(self.positions.sum()) * self.passes:,}; "
            + (f"each evaluation: {self.eval_positions:,} (one forward), {evals} evaluation(s)" if self.eval_count
               else "no evaluation file"),
            f"requests: the largest batch is {self.largest_batch_bytes:,} estimated bytes in "
            f"{self.largest_batch_requests} request(s) (SDK limits: {LIMITS.fwdbwd_max_chunk_len} datums, "
            f"{LIMITS.fwdbwd_max_chunk_bytes_count:,} bytes); the largest datum is {self.largest_datum_bytes:,} bytes",
        ]


def make_plan(train, evaluation, labels, batches, epochs, route, max_steps=None):
    """The plan for `train` and `evaluation` (CheckedExample lists) and one epoch's `batches`
    (lists of indices into `train`); `max_steps`, when set, is the run's length in steps."""
    def image_positions_of(checked):
        return np.array([sum(ch.length for ch in c.model_input.chunks if isinstance(ch, types.ImageChunk))
                         for c in checked], dtype=int)

    lengths = np.array([c.length for c in train])
    image_positions = image_positions_of(train)
    sizes = [(sum(datum_bytes(d) for i in batch for d in train[i].datums),
              len(sdk_requests([d for i in batch for d in train[i].datums]))) for batch in batches]
    largest_bytes, largest_requests = max(sizes)
    return Plan(
        train_count=len(train), eval_count=len(evaluation), labels=labels, lengths=lengths,
        image_positions=image_positions, batch_size=max(len(b) for b in batches), steps_per_epoch=len(batches),
        epochs=epochs, route=route, largest_batch_bytes=largest_bytes, largest_batch_requests=largest_requests,
        largest_datum_bytes=max(datum_bytes(d) for c in train for d in c.datums),
        eval_positions=sum(c.positions for c in evaluation),
        multi_token_labels=sum(len(seq) > 1 for seq in train[0].sequences),
        datums_per_example=max(len(c.datums) for c in train),
        positions=np.array([c.positions for c in train]),
        eval_lengths=np.array([c.length for c in evaluation], dtype=int), eval_image_positions=image_positions_of(evaluation),
        max_steps=max_steps,
    )
