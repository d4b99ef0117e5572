"""The package's one-import Python API: lazy exports, and README.md's "Python API" example as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import satm_cl

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Python API"


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_exports_resolve_and_import_is_light() -> None:
    import satm_cl.condense.engine  # binds the subpackage satm_cl.condense, as any user's import does
    from satm_cl.condense.api import condense

    assert set(satm_cl.__all__) == {"__version__", *satm_cl._EXPORTS}
    for name in satm_cl.__all__:
        value = getattr(satm_cl, name)
        assert callable(value) or name == "__version__", name  # functions and classes, never a module
    assert satm_cl.run_condensation is condense
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        satm_cl.nope  # noqa: B018
    # `import satm_cl` alone loads no torch (the CLI's --help and the exports load what they use)
    code = "import sys, satm_cl; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_readme_python_api_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SATM_CL_CACHE", str(tmp_path / "cache"))
    for _ in range(2):  # and again, as a user reruns a script: the set reloads, the evaluation resumes
        exec(compile(readme_snippet(), "README.md", "exec"), {"__name__": "readme_snippet"})
    work = tmp_path / "runs" / "python-api"
    records = satm_cl.read_records(work / "eval")
    acc = [r["value"] for r in records if r["metric"] == "test_accuracy"]
    assert len(acc) == 2 and min(acc) > 30.0  # one image per class: well above chance (10 %) at 20 iterations
    assert (work / "report" / "README.md").is_file() and (work / "satm" / "synthetic.safetensors").is_file()
    printed = capsys.readouterr().out
    assert printed.count("torch.Size([10, 1, 8, 8])") == 2 and printed.count("test_accuracy") == 4
