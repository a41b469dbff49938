"""What the recipe checks on every example before anything is sent.

Each failure names the example (id and file:line) and says how to fix it; every example is
checked and every failure reported at once, and an example that fails is never skipped:
the run stops before it sends anything (``ExampleCheckError``).

- the prompt builds: each image loads, and each ``ImageChunk`` has ``expected_tokens``
  (without it ``ModelInput.length`` raises in the SDK, and a wrong count is refused by the
  server: tinker-cookbook #170);
- ``T = model_input.length`` is at most ``max_length``;
- the target names only known labels, has no negative value and sums to 1 within 1e-3
  (``token_set.build_datum`` refuses it otherwise, for the reason the #703 page gives);
- every label is one token after the prompt's ending, that token leaves the prompt's own
  tokens unchanged, and the labels' ids are distinct (``token_set.label_token_problems``).
"""

from __future__ import annotations

import dataclasses
import math

from tinker import types

from token_set import build_datum, label_token_problems, target_vector

from .prompts import example_model_input

TARGET_TOLERANCE = 1e-3  # build_datum's own tolerance


@dataclasses.dataclass(frozen=True)
class Problem:
    example_id: str
    source: str
    what: str
    fix: str


class ExampleCheckError(ValueError):
    """Examples that fail their checks; ``problems`` lists every one."""

    def __init__(self, problems, checked_count):
        self.problems = problems
        failing = {problem.example_id for problem in problems}
        groups = {}
        for problem in problems:  # one line per kind of failure, listing the examples it hits
            groups.setdefault((problem.what, problem.fix), []).append(f"{problem.example_id} ({problem.source})")
        lines = [f"{len(failing)} of {checked_count} examples fail their checks; nothing was sent."]
        for (what, fix), where in groups.items():
            shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
            lines.append(f"- {shown}: {what}\n    fix: {fix}")
        super().__init__("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class CheckedExample:
    example: object  # data.Example
    model_input: types.ModelInput
    label_ids: list
    datum: types.Datum

    @property
    def length(self):
        return self.model_input.length


def ending_tokens(model_input, special_ids):
    """The text tokens after the last image or special token: the part of the prompt a
    label's first token could merge with (special tokens and images never merge)."""
    tail = []
    for chunk in reversed(model_input.chunks):
        if not isinstance(chunk, types.EncodedTextChunk):
            break
        tail = list(chunk.tokens) + tail
    for index in range(len(tail) - 1, -1, -1):
        if tail[index] in special_ids:
            return tail[index:]
    return tail


def _target_problems(target, labels):
    """What is wrong with one target dict, as (what, fix) pairs."""
    unknown = sorted(set(target) - set(labels))
    if unknown:
        return [(f"the target names {unknown}, which are not in labels_file",
                 "correct the spelling, or add the word to labels_file")]
    values = [target[word] for word in target]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return [("the target holds a value that is not a finite number", "give each label a probability")]
    if any(v < 0 for v in values):
        return [("the target holds a negative probability", "give each label a probability >= 0")]
    total = float(sum(values))
    if abs(total - 1) > TARGET_TOLERANCE:
        return [(f"the target sums to {total:.4f}, not 1",
                 "fix the data, or divide each probability by the sum (a target that does not sum to 1 trains toward another target)")]
    return []


def _image_problems(model_input):
    missing = [index for index, chunk in enumerate(c for c in model_input.chunks if isinstance(c, types.ImageChunk))
               if chunk.expected_tokens is None]
    if missing:
        return [(f"image(s) {missing} have no expected_tokens, so T is unknown",
                 "set expected_tokens from the model's image processor (tinker-cookbook's image_to_chunk does)")]
    return []


def check_examples(examples, labels, builder, tokenizer, prefill, separator, base_dir, max_length):
    """Every example checked and built into a datum; raises ExampleCheckError listing every failure."""
    problems, checked, ids_by_ending = [], [], {}
    special_ids = set(tokenizer.all_special_ids)
    for example in examples:
        found = list(_target_problems(example.target, labels))
        try:
            model_input = example_model_input(builder, example, prefill, base_dir)
        except ValueError as error:
            found.append((str(error), "fix the image path or URL"))
            model_input = None
        image_problems = _image_problems(model_input) if model_input is not None else []
        found += image_problems
        if model_input is not None and not image_problems:  # T is known: the length and label checks
            if not isinstance(model_input.chunks[-1], types.EncodedTextChunk):
                found.append(("the prompt ends with an image, so the label would follow an image",
                              "end the prompt with text, e.g. a prefill such as 'Emotion:'"))
            elif model_input.length > max_length:
                found.append((f"T = {model_input.length} positions, more than max_length = {max_length}",
                              "shorten the prompt or its images, or raise max_length if the model takes it"))
            else:
                ending = tuple(ending_tokens(model_input, special_ids))
                if ending not in ids_by_ending:
                    ids_by_ending[ending] = label_token_problems(tokenizer, list(ending), labels, separator)
                label_ids, label_problems = ids_by_ending[ending]
                found += [(f"after the prompt's ending {tokenizer.decode(list(ending))[-40:]!r}: {p}",
                           "pick a prefill and separator after which each label is one token, or rename the label")
                          for p in label_problems]
        if found:
            problems += [Problem(example.id, example.source, what, fix) for what, fix in found]
            continue
        datum = build_datum(model_input, target_vector(example.target, labels), label_ids)
        checked.append(CheckedExample(example, model_input, label_ids, datum))
    if problems:
        raise ExampleCheckError(problems, len(examples))
    return checked
