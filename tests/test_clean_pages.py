"""No progress bar, download or model-loading message, and no Python warning, reaches a
page or an executed notebook, whatever the model cache held: the cold build in
conftest.built_book starts from an empty TINKER_OFFLINE_CACHE, so the first notebook
converts the GGUF weights while it runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from conftest import toc_docnames

pytestmark = pytest.mark.book

#: tqdm bars ("45%|####", "3.2it/s]"), transformers' and our loaders' messages, Python's
#: warnings ("...: UserWarning: ..."), tracebacks. The book's own lower-case "warning:"
#: lines (chapter 2's label-token check) are content, not noise.
NOISE = re.compile(
    r"\d+%\||\d(?:it/s|s/it)\]|Loading weights|Loading checkpoint|de-?quantiz|Converting|Downloading"
    r"|\b[A-Z]\w*Warning\b|warnings\.warn|Traceback \(most recent call last\)"
)


def noise_in(text: str) -> list[str]:
    return [text[max(0, m.start() - 60) : m.end() + 60] for m in NOISE.finditer(text)]


def notebook_output_texts(path: Path):
    """(cell index, output type/stream, text) of every output of an executed notebook."""
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            yield index, output.get("name", output["output_type"]), "".join(text) if isinstance(text, list) else text


def test_the_noise_pattern_sees_bars_loaders_and_warnings():
    assert noise_in("Converting and de-quantizing GGUF tensors...:  45%|####5     | 123/272 [00:01<00:01, 99.1it/s]")
    assert noise_in("Loading weights: 100%|##########| 272/272")
    assert noise_in("/x/peft/tuners.py:12: UserWarning: something")
    assert not noise_in("warning: 19 of 23 first tokens are fragments: 'sadness' starts with ' sad'")


def test_no_executed_notebook_has_noise_or_stderr(built_book):
    notebooks = sorted(built_book.execute_dir.rglob("*.ipynb"))
    assert len(notebooks) >= 6, notebooks
    problems = []
    for path in notebooks:
        for index, stream, text in notebook_output_texts(path):
            if stream == "stderr" and text.strip():
                problems.append(f"{path.name} cell {index}: stderr: {text[:200]!r}")
            problems += [f"{path.name} cell {index}: {hit!r}" for hit in noise_in(text)]
    assert not problems, "\n".join(problems)


def test_no_page_shows_noise(built_book):
    problems = []
    for docname in toc_docnames():
        page = BeautifulSoup((built_book.html_dir / f"{docname}.html").read_text(), "html.parser")
        for output in page.select("div.cell_output, div.output"):
            problems += [f"{docname}: {hit!r}" for hit in noise_in(output.get_text())]
    assert not problems, "\n".join(problems)


def test_the_build_filled_an_empty_model_cache(built_book):
    """The build started with an empty TINKER_OFFLINE_CACHE and converted the weights into
    it; otherwise the tests above prove nothing about a first run on a fresh machine."""
    if built_book.result is None:
        pytest.skip("prebuilt book ($BOOK_PREBUILT): its model cache is unknown")
    converted = list(built_book.model_cache.glob("*/complete.json"))
    assert converted, f"nothing was converted into {built_book.model_cache}"
