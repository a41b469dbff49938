"""The book's own task: its emotion data and its prompts. Nothing here is needed to use the
technique on your data; that lives in ``token_set``.

The data is read when it is first asked for, never at import: ``LABELS``, ``SYSTEM_PROMPT``,
``ANSWER_PREFIX`` and ``LABEL_INFO`` are read from ``labels.json`` on first use, and
``read_examples(name)`` reads a split. The local copy (``data/emotions`` in a clone) is used when
there is one, else the published one (``DATA_URL``).

The chapters show a teaching copy of each function they use, so that a downloaded notebook
runs on its own; ``tests/test_teaching_copies.py`` fails when a copy's code differs from the
function here or in ``token_set``.
"""

import functools
import json
import os
import urllib.request
from pathlib import Path

#: Where the data is published, read when there is no local copy (TINKER_BOOK_DATA_URL can
#: point it at a clone); the pages set it in their setup cell (tools/setup_cell.py).
DATA_URL = os.environ.get(
    "TINKER_BOOK_DATA_URL", "https://raw.githubusercontent.com/tinker-token-set-book/book/main/data/emotions/"
)
#: The repository's copy of the data (a chapter's own is ``../data/emotions``).
LOCAL_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "emotions"


def read_data_file(name):
    """The text of one data file: the local copy when there is one, else the published one."""
    local = LOCAL_DATA_DIR / name
    if local.exists():
        return local.read_text()
    with urllib.request.urlopen(DATA_URL + name) as response:
        return response.read().decode()


def read_examples(name):
    """The examples of one .jsonl split: dicts with "id", "text" and "target" (label -> p)."""
    return [json.loads(line) for line in read_data_file(name).splitlines() if line.strip()]


@functools.cache
def _label_info():
    return json.loads(read_data_file("labels.json"))


_FROM_LABELS_FILE = {"LABEL_INFO": None, "LABELS": "labels", "SYSTEM_PROMPT": "system_prompt",
                     "ANSWER_PREFIX": "answer_prefix"}


def __getattr__(name):
    """LABEL_INFO, LABELS, SYSTEM_PROMPT and ANSWER_PREFIX, read from labels.json when first asked for."""
    if name in _FROM_LABELS_FILE:
        key = _FROM_LABELS_FILE[name]
        return _label_info() if key is None else _label_info()[key]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_prompt_tokens(tokenizer, system_prompt, sentence, answer_prefix):
    """The prompt as a list of T ints: system prompt and sentence in the chat template, the
    generation prompt, then the answer prefix, so that the next token is the label word."""
    messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": sentence}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text + answer_prefix, add_special_tokens=False)
