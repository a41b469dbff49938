"""Which token ids score the labels, checked at the prompt's real ending, and which written
form of the labels (spaced, bare, capitalized, ...) the base model puts its probability on.

Every function takes the tokenizer, the prompt and the labels as arguments.
"""

from __future__ import annotations

import dataclasses
import textwrap

import torch
from tinker import types

from .evaluation import forward_logprobs


def label_token_ids(tokenizer, labels: list[str], separator: str = " ") -> list[int]:
    """One token id per label, in ``labels`` order: the token of ``separator + label``.
    Raises ValueError when a label is not exactly one token in that form or two labels share
    an id. This does not look at your prompt: ``label_token_problems`` checks the ids there."""
    pieces = [tokenizer.encode(separator + word, add_special_tokens=False) for word in labels]
    problems = [f"{separator + word!r} is {len(ids)} tokens: {tokenizer.convert_ids_to_tokens(ids)}"
                for word, ids in zip(labels, pieces) if len(ids) != 1]
    if not problems and len({ids[0] for ids in pieces}) != len(labels):
        problems.append("two labels share a token id")
    if problems:
        raise ValueError("labels that cannot be scored as one token each:\n  " + "\n  ".join(problems))
    return [ids[0] for ids in pieces]


def label_token_problems(tokenizer, prompt_tokens: list[int], labels: list[str],
                         separator: str = " ") -> tuple[list[int], list[str]]:
    """Each label's token id right after ``prompt_tokens``, and every reason it cannot be scored there.

    ``prompt_tokens`` is your prompt's ending (its last text chunk is enough: images and special
    tokens never merge with what follows). Returns ``(ids, problems)``, ``ids`` in ``labels`` order
    (the first token of each label); the ids are usable only when ``problems`` is empty. A label
    fails when ``separator + label`` is more than one token, when the prompt followed by it does not
    tokenize as the prompt followed by its token, or when two labels share a token.
    """
    prompt_tokens = list(prompt_tokens)
    prompt_text = tokenizer.decode(prompt_tokens)
    ids, problems = [], []
    for word in labels:
        piece = separator + word
        word_ids = tokenizer.encode(piece, add_special_tokens=False)
        if not word_ids:
            raise ValueError(f"label {word!r} with separator {separator!r} is empty text: give every label a word")
        ids.append(word_ids[0])
        if len(word_ids) != 1:
            problems.append(f"{piece!r} is {len(word_ids)} tokens: {tokenizer.convert_ids_to_tokens(word_ids)}")
        elif tokenizer.encode(prompt_text + piece, add_special_tokens=False) != prompt_tokens + word_ids:
            problems.append(f"{piece!r}: prompt + label does not tokenize as prompt + [id]")
    shared = sorted({tokenizer.decode([i]) for i in ids if ids.count(i) > 1})
    if shared:
        problems.append(f"labels share a first token: {shared}")
    return ids, problems


def check_label_tokens(tokenizer, prompt_tokens: list[int], words: list[str], separator: str = " ") -> list[int]:
    """Each word's first token right after prompt_tokens, as a list of ids.

    Raises ValueError if a word changes the prompt's own tokens or two words share a first
    token; prints a warning for first tokens that are only a fragment of their word.
    """
    prompt_tokens = list(prompt_tokens)
    prompt_text = tokenizer.decode(prompt_tokens)
    first_ids, problems, fragments = {}, [], []
    for word in words:
        ids = tokenizer.encode(prompt_text + separator + word, add_special_tokens=False)
        if ids[: len(prompt_tokens)] != prompt_tokens:
            problems.append(f"{word!r}: the prompt's tokens change when {separator + word!r} follows it")
            continue
        first_ids[word] = ids[len(prompt_tokens)]
        first_text = tokenizer.decode([first_ids[word]])
        if first_text.strip() != word:
            fragments.append(f"{word!r} starts with {first_text!r}")
    words_by_id = {}
    for word, token_id in first_ids.items():
        words_by_id.setdefault(token_id, []).append(word)
    for token_id, sharing in words_by_id.items():
        if len(sharing) > 1:
            problems.append(f"{' and '.join(map(repr, sharing))} share the first token {tokenizer.decode([token_id])!r}")
    if fragments:
        message = f"warning: {len(fragments)} of {len(words)} first tokens are fragments: " + "; ".join(fragments)
        print(textwrap.fill(message, width=100, subsequent_indent="  "))
    if problems:
        raise ValueError("label tokens fail the check:\n  " + "\n  ".join(problems))
    return [first_ids[word] for word in words]


# ------------------------------------------------------------------ label forms
#: The forms compare_label_forms tries by default: how each label may be written after your prompt.
LABEL_FORMS = {
    "spaced": lambda word: " " + word,
    "bare": lambda word: word,
    "spaced capitalized": lambda word: " " + word[:1].upper() + word[1:],
    "bare capitalized": lambda word: word[:1].upper() + word[1:],
}


@dataclasses.dataclass
class LabelForm:
    """One written form of the labels at one prompt ending."""

    name: str
    pieces: list[str]  # the text of each label in this form, in labels order
    ids: list[int]  # the first token of each piece
    problems: list[str]  # why this form cannot be scored one token per label; empty when it can
    probabilities: list[float]  # the base model's probability of each label's first token at the ending

    @property
    def mass(self) -> float:
        """Probability on the form's distinct first tokens (a shared first token counts once)."""
        return float(sum(dict(zip(self.ids, self.probabilities)).values()))


@dataclasses.dataclass
class LabelFormReport:
    """What ``compare_label_forms`` found: every form, the best usable one, and whether a form
    that fails the token checks holds more probability than it. ``str(report)`` is the table."""

    forms: list[LabelForm]

    @property
    def recommended(self) -> LabelForm | None:
        """The usable form (no problems) with the most mass, or None when no form is usable."""
        usable = [form for form in self.forms if not form.problems]
        return max(usable, key=lambda form: form.mass) if usable else None

    @property
    def most_mass(self) -> LabelForm:
        return max(self.forms, key=lambda form: form.mass)

    def __str__(self) -> str:
        top = self.most_mass.mass
        lines = [f"{'form':<20} {'mass':>9} {'x best':>8}  tokens"]
        for form in sorted(self.forms, key=lambda form: -form.mass):
            verdict = "one token each" if not form.problems else f"FAILS: {form.problems[0]}" + (
                f" (+{len(form.problems) - 1} more)" if len(form.problems) > 1 else "")
            lines.append(f"{form.name:<20} {form.mass:>9.3g} {form.mass / top if top > 0 else 0:>8.3g}  {verdict}")
        best = self.recommended
        if best is None:
            lines.append("No form is one token per label here: change the prompt's ending or the labels.")
            return "\n".join(lines)
        lines.append(f"Use the {best.name} form ({best.pieces[0]!r}, ...): it holds the most mass of the forms that pass.")
        if self.most_mass is not best:
            lines.append(f"The {self.most_mass.name} form holds {self.most_mass.mass / best.mass:.3g}x more mass but fails "
                         f"the token checks ({self.most_mass.problems[0]}): the model would rather write the labels that "
                         f"way here, and the {best.name} form trains a form it puts less probability on.")
        if any(form.problems for form in self.forms):
            lines.append("(A form that fails counts the probability of each label's first token: at most that much "
                         "mass is on its whole labels.)")
        return "\n".join(lines)


def compare_label_forms(training_client, tokenizer, model_input: types.ModelInput, labels: list[str],
                        forms: dict | None = None) -> LabelFormReport:
    """The base model's probability on each written form of the labels after ``model_input``.

    ``forms`` maps a name to a function from label to text (default ``LABEL_FORMS``: spaced, bare,
    spaced capitalized, bare capitalized); add your own. One ``forward`` scores every form's first
    tokens at row ``T - 1``; each form is also run through ``label_token_problems`` at the prompt's
    last text chunk. Call it on a client that has not trained yet: it measures that client's model.
    """
    forms = LABEL_FORMS if forms is None else forms
    ending = model_input.chunks[-1]
    if not isinstance(ending, types.EncodedTextChunk):
        raise ValueError("the prompt ends with an image: end it with text (a prefill) before the labels")
    checked = {}
    for name, write in forms.items():
        pieces = [write(word) for word in labels]
        ids, problems = [], []
        for piece in pieces:  # each form's own pieces, checked at the real ending
            piece_ids, piece_problems = label_token_problems(tokenizer, list(ending.tokens), [piece], separator="")
            ids += piece_ids
            problems += piece_problems
        if len(set(ids)) != len(ids):
            problems.append("labels share a first token")
        checked[name] = (pieces, ids, problems)
    all_ids = sorted({i for _, ids, _ in checked.values() for i in ids})
    T = model_input.length
    target_tokens = torch.zeros((T, len(all_ids)), dtype=torch.int64)
    target_tokens[T - 1] = torch.tensor(all_ids)
    probe = types.Datum(model_input=model_input,
                        loss_fn_inputs={"target_tokens": target_tokens, "weights": torch.zeros((T, len(all_ids)))})
    row = forward_logprobs(training_client, [probe])[0][T - 1]
    probability = dict(zip(all_ids, row.exp().tolist()))
    return LabelFormReport([LabelForm(name, pieces, ids, problems, [probability[i] for i in ids])
                            for name, (pieces, ids, problems) in checked.items()])
