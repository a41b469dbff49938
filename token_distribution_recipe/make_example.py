"""Write the example files that ship with the recipe, from the book's data (data/emotions/).

    python -m token_distribution_recipe.make_example [--check]

- ``example/train.jsonl``: the 24 training sentences; every third one comes with a photo
  (a generated colour field standing in for a real one) before the sentence;
- ``example/eval.jsonl``: the 8 held-out situations (``new_situations.jsonl``), two with a photo;
- ``example/long.jsonl``: 4 prompts of about 3,000 positions like tinker-cookbook #703's, a
  diary of earlier entries, a 640 x 480 photo and a question about the last entry (the book
  runs ``--dry-run`` on it to show the plan for such prompts);
- ``example/labels.json``: the 21 label words; ``example/images/``: the photos.

``--check`` writes nothing and fails if a shipped file differs from what this script makes
(``tests/test_recipe.py`` runs it).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from emotion_task import LABELS, SYSTEM_PROMPT, read_examples

EXAMPLE_DIR = Path(__file__).resolve().parent / "example"


def example_photo(index, width=96, height=64):
    """A colour field standing in for a photo: a gradient whose hues depend on `index`."""
    rng = np.random.default_rng(index)
    start, end = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    pixels = start * (1 - x) * (1 - 0.3 * y) + end * x * (0.7 + 0.3 * y)
    return Image.fromarray((255 * np.clip(pixels, 0, 1)).astype(np.uint8))


def _png(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _record(example_id, text, target, image=None, lead="A photo I took today:"):
    user = [{"type": "text", "text": text}]
    if image is not None:
        user = [{"type": "text", "text": lead}, {"type": "image", "image": image}, {"type": "text", "text": "\n" + text}]
    return {"id": example_id,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
            "target": target}


def example_files():
    """Every shipped file's path (relative to example/) and bytes."""
    files, train, held_out = {}, read_examples("train.jsonl"), read_examples("new_situations.jsonl")
    lines = {"train.jsonl": [], "eval.jsonl": [], "long.jsonl": []}
    for name, examples, every in (("train.jsonl", train, 3), ("eval.jsonl", held_out, 4)):
        for index, example in enumerate(examples):
            image = None
            if index % every == 0:
                image = f"images/{example['id']}.png"
                files[image] = _png(example_photo(len(files)))
            lines[name].append(_record(example["id"], example["text"], example["target"], image))
    for index, last in enumerate(train[:4]):  # #703's shape: a long diary, a photo, a question
        diary = [f"Day {day + 1}: {train[(day + index) % len(train)]['text']}" for day in range(115)]
        text = ("Here is my diary.\n\n" + "\n".join(diary) + "\n\nHow do I feel in this last entry? " + last["text"])
        image = f"images/long-{index + 1}.png"
        files[image] = _png(example_photo(100 + index, width=640, height=480))
        lines["long.jsonl"].append(_record(f"long-{index + 1}", text, last["target"], image, "My photo from today:"))
    for name, records in lines.items():
        files[name] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    files["labels.json"] = (json.dumps(LABELS, indent=1) + "\n").encode()
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a shipped file differs; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, data in example_files().items():
        path = EXAMPLE_DIR / name
        if path.exists() and path.read_bytes() == data:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if args.check and stale:
        sys.exit(f"example files differ from what make_example writes: {stale}; "
                 "run python -m token_distribution_recipe.make_example")
    print(f"{len(stale)} file(s) {'differ' if args.check else 'written'}" if stale else "example files up to date")


if __name__ == "__main__":
    main()
