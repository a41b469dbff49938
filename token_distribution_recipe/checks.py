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
- each label's whole token sequence after the prompt's ending is scored exactly: the prompt
  followed by the label tokenizes as the prompt followed by the label's own tokens, no two labels
  have the same tokens, and no label's tokens begin another's unless ``label_end`` closes each
  answer (``token_set.label_token_sequences``). This is checked once per distinct ending, and a
  label set that fails is reported per label, naming ``labels_file`` (``LabelSetError``), not
  once per example. Labels of several tokens are allowed: each example then takes one datum per
  branch of the labels' token tree (``token_set.build_label_datums``).
"""

from __future__ import annotations

import dataclasses
import math

from tinker import types

from token_set import build_label_datums, label_token_sequences, target_vector

from .prompts import example_model_input

TARGET_TOLERANCE = 1e-3  # build_datum's own tolerance
ROUNDING = 1e-9  # normalize_targets leaves a sum this close to 1 alone


@dataclasses.dataclass(frozen=True)
class Problem:
    example_id: str
    source: str
    what: str
    fix: str


SHOWN = 5  # examples named per kind of failure when the full list is in a file


def problem_list(problems):
    """Every problem, one per line, for the file a long report points to."""
    return "".join(f"{p.example_id} ({p.source}): {p.what}\n    fix: {p.fix}\n" for p in problems)


class ExampleCheckError(ValueError):
    """Examples that fail their checks; ``problems`` lists every one, and ``label_set`` (a
    ``LabelSetError``, or None) says when the labels themselves cannot be scored.

    The message names every failing example, unless ``listed_in`` (a path) holds the full
    list (``problem_list``): then it names the first few of each kind and says where the rest are."""

    def __init__(self, problems, checked_count, label_set=None, listed_in=None):
        self.problems, self.label_set, self.listed_in = problems, label_set, listed_in
        self.checked_count = checked_count
        failing = {problem.example_id for problem in problems}
        groups = {}
        for problem in problems:  # one line per kind of failure, listing the examples it hits
            groups.setdefault((problem.what, problem.fix), []).append(f"{problem.example_id} ({problem.source})")
        lines = [str(label_set)] if label_set else []
        if problems or not label_set:
            lines.append(f"{len(failing)} of {checked_count} examples fail their checks; nothing was sent.")
        for (what, fix), where in groups.items():
            if listed_in is not None and len(where) > SHOWN:
                shown = ", ".join(where[:SHOWN]) + f" and {len(where) - SHOWN} more, every one listed in {listed_in}"
            else:
                shown = ", ".join(where)
            lines.append(f"- {shown}: {what}\n    fix: {fix}")
        super().__init__("\n".join(lines))


class LabelSetError(ValueError):
    """The labels cannot be scored exactly after a prompt ending; says which labels and why."""

    def __init__(self, labels_file, failures):
        self.labels_file, self.failures = labels_file, failures  # {the ending's text: label_token_sequences' error}
        lines = [f"{labels_file}: the label set cannot be scored exactly."]
        for ending, message in failures.items():
            lines.append(f"- after the prompt's ending {ending!r}:")
            lines += [f"    {line.strip()}" for line in message.splitlines()[1:]]
        lines.append("    fix: rename or remove the label in labels_file, change the prefill or label_separator, "
                     "or set label_end to the text that closes an answer (e.g. the end-of-turn token)")
        super().__init__("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class CheckedExample:
    example: object  # data.Example
    model_input: types.ModelInput
    sequences: list  # each label's tokens after the prompt
    datums: list  # one per branch of the labels' token tree; one when every label is one token

    @property
    def length(self):
        return self.model_input.length

    @property
    def positions(self):
        """The positions its datums send: T per datum, plus each branch's extra tokens."""
        return sum(datum.model_input.length for datum in self.datums)


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
        return [(f"the target sums to {total:.4f}, not 1 within {TARGET_TOLERANCE:g}",
                 "fix the data, or divide each probability by the sum (normalize_targets=True does it for every "
                 "target; a target that does not sum to 1 trains toward another target)")]
    return []


def normalize_targets(examples):
    """Each example with its target divided by its sum, and how many targets that changed (a
    sum within ``ROUNDING`` of 1 is float rounding: left as it is). Targets that cannot be divided (a value that is not a finite number >= 0, or a sum of 0)
    are left as they are, for the checks to report."""
    result, changed = [], 0
    for example in examples:
        values = list(example.target.values())
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                      for v in values)
        total = float(sum(values)) if numbers else 0.0
        if numbers and total > 0 and abs(total - 1) > ROUNDING:
            example = dataclasses.replace(example, target={label: value / total for label, value in example.target.items()})
            changed += 1
        result.append(example)
    return result, changed


def _image_problems(model_input):
    missing = [index for index, chunk in enumerate(c for c in model_input.chunks if isinstance(c, types.ImageChunk))
               if chunk.expected_tokens is None]
    if missing:
        return [(f"image(s) {missing} have no expected_tokens, so T is unknown",
                 "set expected_tokens from the model's image processor (tinker-cookbook's image_to_chunk does)")]
    return []


def check_examples(examples, labels, builder, tokenizer, prefill, separator, base_dir, max_length, labels_file="labels_file",
                   label_end=""):
    """Every example checked and built into its datums; raises LabelSetError when the labels cannot
    be scored after an ending, else ExampleCheckError listing every failing example."""
    problems, checked, sequences_by_ending, label_failures = [], [], {}, {}
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
                if ending not in sequences_by_ending:  # the label set is checked once per ending
                    try:
                        sequences_by_ending[ending] = label_token_sequences(tokenizer, list(ending), labels, separator, label_end)
                    except ValueError as error:
                        sequences_by_ending[ending] = None
                        label_failures[tokenizer.decode(list(ending))[-40:]] = str(error)
        if found:
            problems += [Problem(example.id, example.source, what, fix) for what, fix in found]
            continue
        sequences = sequences_by_ending[ending]
        if sequences is not None:
            datums = build_label_datums(model_input, target_vector(example.target, labels), sequences)
            checked.append(CheckedExample(example, model_input, sequences, datums))
    if problems or label_failures:
        raise ExampleCheckError(problems, len(examples), LabelSetError(labels_file, label_failures) if label_failures else None)
    return checked
