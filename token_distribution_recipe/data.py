"""The recipe's input files: the examples (JSONL), the label words (JSON), and images.

The format, as ``FORMAT`` below says it (the book's page "Train on your data" shows it too).
"""

from __future__ import annotations

import dataclasses
import io
import json
import urllib.request
from pathlib import Path

FORMAT = """\
One example per line, a JSON object with three keys:

  "id"        a string that names the example in every message (unique in the file)
  "messages"  the prompt as chat messages, in tinker-cookbook's message format:
              {"role": "system" | "user" | "assistant", "content": <text or parts>}
              where <parts> is a list of {"type": "text", "text": "..."} and
              {"type": "image", "image": "<path or URL>"}; a path is relative to the
              JSONL file; a URL may be http(s)://, file:// or a data: URI
  "target"    the target distribution: {"<label word>": probability, ...}; labels left
              out are 0; the probabilities sum to 1

The label words are a JSON list in their own file (labels_file), in the order the plots
and metrics use. The text that precedes the answer (prefill, e.g. "Emotion:") is a
setting: the recipe appends it after the generation prompt, and the label tokens are the
tokens that follow it.
"""

ROLES = ("system", "user", "assistant")


class DataFileError(ValueError):
    """A file the recipe cannot read at all (not JSON, empty, a missing key); the message
    names the file and line and says what the line needs."""


@dataclasses.dataclass(frozen=True)
class Example:
    id: str
    messages: list
    target: dict
    source: str  # "<file>:<line>", for messages


def _format_problem(message):
    """What is wrong with one message of a line; None when it is well formed."""
    if not isinstance(message, dict) or message.get("role") not in ROLES or "content" not in message:
        return f"a message needs a role ({', '.join(ROLES)}) and content, got {str(message)[:80]}"
    content = message["content"]
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return f"content must be text or a list of parts, got {type(content).__name__}"
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("text", "image"):
            return f'a content part needs "type": "text" or "image", got {str(part)[:80]}'
        key = part["type"]
        if not isinstance(part.get(key), str):
            return f'a {key} part needs a string "{key}", got {str(part)[:80]}'
    return None


def read_examples(path):
    """The examples of a JSONL file. Raises DataFileError for a line that is not an example
    (naming the line) or a file with none; problems with the values themselves (targets,
    images, labels) are left to ``checks``, which reports every example at once."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file; give the path of a JSONL file of examples")
    examples, seen = [], {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFileError(f"{where}: not JSON ({error.msg} at column {error.colno}); each line is one JSON object") from None
        missing = [key for key in ("id", "messages", "target") if not isinstance(record, dict) or key not in record]
        if missing:
            raise DataFileError(f"{where}: missing {missing}; each line needs id, messages and target\n\n{FORMAT}")
        if not isinstance(record["messages"], list) or not record["messages"]:
            raise DataFileError(f"{where} ({record['id']}): messages must be a non-empty list")
        for message in record["messages"]:
            problem = _format_problem(message)
            if problem:
                raise DataFileError(f"{where} ({record['id']}): {problem}\n\n{FORMAT}")
        if not isinstance(record["target"], dict):
            raise DataFileError(f"{where} ({record['id']}): target must be an object {{label: probability}}")
        example_id = str(record["id"])
        if example_id in seen:
            raise DataFileError(f"{where}: id {example_id!r} is also on line {seen[example_id]}; ids must be unique")
        seen[example_id] = number
        examples.append(Example(example_id, record["messages"], record["target"], where))
    if not examples:
        raise DataFileError(f"{path}: the file has no examples; it needs one JSON object per line\n\n{FORMAT}")
    return examples


def read_labels(path):
    """The label words: a JSON list of distinct, non-empty strings."""
    path = Path(path)
    try:
        labels = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file; give a JSON list of label words") from None
    except json.JSONDecodeError as error:
        raise DataFileError(f"{path}: not JSON ({error.msg}); give a JSON list of label words") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(w, str) and w.strip() for w in labels):
        raise DataFileError(f'{path}: expected a non-empty JSON list of words, like ["joy", "sadness"]')
    repeated = sorted({word for word in labels if labels.count(word) > 1})
    if repeated:
        raise DataFileError(f"{path}: {repeated} appear more than once; each label once")
    return labels


def load_image(reference, base_dir):
    """A PIL image from a path (relative to `base_dir`) or a URL. Raises ValueError naming
    what was looked for."""
    from PIL import Image

    if reference.startswith(("http://", "https://", "file://", "data:")):
        try:
            with urllib.request.urlopen(reference) as response:
                data = response.read()
        except Exception as error:  # noqa: BLE001 - any failure to fetch is the same problem
            raise ValueError(f"image {reference[:80]!r} could not be fetched ({error})") from None
    else:
        path = Path(base_dir) / reference
        if not path.exists():
            raise ValueError(f"image {reference!r} not found (looked for {path}); paths are relative to the JSONL file")
        data = path.read_bytes()
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"image {reference[:80]!r} is not an image PIL can read ({error})") from None
    return image.convert("RGB") if image.mode != "RGB" else image
