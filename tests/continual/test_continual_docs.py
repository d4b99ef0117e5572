"""The docs/continual.md example (a condensed set inside your own Avalanche strategy) runs as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "continual.md"
SECTION = "## A condensed set in your own Avalanche strategy"


def snippet_blocks() -> list[str]:
    """The ```python blocks of the docs section, in order."""
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)


def test_docs_snippet_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = snippet_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(ROOT)  # the snippet loads a committed artifact by a repository-relative path
    namespace: dict[str, object] = {"__name__": "docs_snippet"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()  # Avalanche's default loggers print too
    printed = [float(line) for line in out if re.fullmatch(r"[0-9.]+", line.strip())]
    assert len(printed) == 2 and all(0.0 <= p <= 1.0 for p in printed)
    memory = namespace["memory"]
    assert len(memory.buffer) == 100 and sorted(memory.seen_classes) == list(range(10))  # type: ignore[attr-defined]
    # the last experience was just learned: well above chance on it
    assert namespace["results"]["Top1_Acc_Exp/eval_phase/test_stream/Exp004"] > 0.5  # type: ignore[index]
