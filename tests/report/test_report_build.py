"""build_report end to end: files written, README links, and bad input rejected before writing."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from _report_fixtures import (
    continual_records,
    cross_arch_records,
    in_domain_records,
    make_artifact,
    ood_records,
    write_jsonl,
)

from satm_cl.errors import SatmError
from satm_cl.report import build_report


class _FakeSynthetic:
    def __init__(self, n_classes: int = 10, ipc: int = 3) -> None:
        self.labels = torch.arange(n_classes).repeat_interleave(ipc)
        self._pixels = torch.rand(n_classes * ipc, 3, 32, 32)
        self.meta: dict[str, Any] = {"class_names": [f"class {i}" for i in range(n_classes)]}

    def pixels(self) -> torch.Tensor:
        return self._pixels


@pytest.fixture
def fake_synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("satm_cl.synthetic")
    module.load_synthetic = lambda path: _FakeSynthetic()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "satm_cl.synthetic", module)


def test_build_report_writes_everything(tmp_path: Path, fake_synthetic: None) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", in_domain_records() + cross_arch_records())
    b = write_jsonl(tmp_path / "b.jsonl", ood_records() + continual_records())
    arts = [make_artifact(tmp_path / "arts", "s", "satm"), make_artifact(tmp_path / "arts", "m", "mtt")]
    out = tmp_path / "report"
    written = build_report([a, b], out, arts)
    names = {p.relative_to(out).as_posix() for p in written}
    for stage in ("in-domain", "cross-arch", "ood", "continual"):
        assert {f"{stage}.md", f"{stage}.csv", f"{stage}.tex"} <= names
    assert {"summary.csv", "README.md", "plots/in-domain_accuracy_vs_ipc.png", "plots/cross-arch_bars.png",
            "plots/ood_bars.png", "plots/continual_avg_accuracy.png", "plots/continual_matrices.png",
            "plots/condensation_curves.png"} <= names
    assert sum(n.startswith("plots/images_") for n in names) == 2
    for p in written:
        assert p.is_file() and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 1024
    readme = (out / "README.md").read_text()
    assert "[md](in-domain.md)" in readme and "82.0 ± 2.0" in readme
    assert "**Check**" not in readme  # every experience of continual_records() was learned
    for n in names:
        if n.endswith(".png"):
            assert f"]({n})" in readme


def test_build_report_without_synthetic_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "satm_cl.synthetic", None)  # import fails
    a = write_jsonl(tmp_path / "a.jsonl", in_domain_records())
    art = make_artifact(tmp_path, "s", "satm")
    written = build_report([a], tmp_path / "out", [art])
    assert (tmp_path / "out" / "plots" / "condensation_curves.png") in written
    assert "not drawn" in (tmp_path / "out" / "README.md").read_text()


def test_malformed_records_write_nothing(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", in_domain_records())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"stage": "in-domain"}\n')
    out = tmp_path / "out"
    with pytest.raises(SatmError) as err:
        build_report([good, bad], out)
    assert "\n" not in str(err.value) and "bad.jsonl:1" in str(err.value)
    assert not out.exists()
    bad.write_text("{not json\n")
    with pytest.raises(SatmError, match="not a JSON record"):
        build_report([good, bad], out)
    with pytest.raises(SatmError, match="not found"):
        build_report([tmp_path / "missing.jsonl"], out)
    assert not out.exists()


def test_empty_records_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    out = tmp_path / "out"
    with pytest.raises(SatmError, match=r"no records in .*empty\.jsonl"):
        build_report([empty], out)
    assert not out.exists()


def test_bad_artifact_log_writes_nothing(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", in_domain_records())
    art = make_artifact(tmp_path, "s", "satm")
    (art / "log.jsonl").write_text("oops\n")
    out = tmp_path / "out"
    with pytest.raises(SatmError, match=r"log\.jsonl:1"):
        build_report([a], out, [art])
    assert not out.exists()


def test_build_report_with_real_synthetic_artifact(tmp_path: Path) -> None:
    synthetic = pytest.importorskip("satm_cl.synthetic")
    meta = synthetic.make_meta(dataset="mnist", class_names=[str(i) for i in range(10)], ipc=2,
                               image_shape=(1, 28, 28), mean=(0.1307,), std=(0.3081,), method="satm",
                               config={}, seed=0)
    art = tmp_path / "art"
    art.mkdir()
    labels = torch.arange(10).repeat_interleave(2)
    syn = synthetic.SyntheticSet(torch.randn(20, 1, 28, 28), labels, 0.01, meta)
    syn.save(art)
    (art / "log.jsonl").write_text("".join(f'{{"iteration": {i}, "loss": {1 / (i + 1)}, "grad_norm": 1.0}}\n'
                                           for i in range(30)))
    records = write_jsonl(tmp_path / "r.jsonl", in_domain_records())
    written = build_report([records], tmp_path / "out", [art])
    grids = [p for p in written if p.name.startswith("images_")]
    assert len(grids) == 1 and grids[0].stat().st_size > 1024
    assert "satm · mnist · IPC 2" in (tmp_path / "out" / "README.md").read_text()
    # two sets of one kind: their captions say which directory each is
    other = tmp_path / "seed1"
    syn.save(other)
    (other / "log.jsonl").write_text((art / "log.jsonl").read_text())
    build_report([records], tmp_path / "two", [art, other])
    readme = (tmp_path / "two" / "README.md").read_text()
    assert "satm · mnist · IPC 2 (art)" in readme and "satm · mnist · IPC 2 (seed1)" in readme
    assert f"`{art}`: seed 0" in readme  # the settings the artifact records (here only its seed)


def test_a_record_in_two_files_counts_once(tmp_path: Path) -> None:
    """A records file passed twice (or a run copied into two outputs) is one run, not two seeds."""
    recs = in_domain_records()
    path = write_jsonl(tmp_path / "r.jsonl", recs)
    build_report([path], tmp_path / "once")
    build_report([path, path], tmp_path / "twice")
    assert (tmp_path / "twice" / "summary.csv").read_text() == (tmp_path / "once" / "summary.csv").read_text()
    assert f"{len(recs)} records appeared in more than one" in (tmp_path / "twice" / "README.md").read_text()
    changed = [{**recs[0], "value": recs[0]["value"] + 1.0}, *recs[1:]]
    other = write_jsonl(tmp_path / "other.jsonl", changed)
    with pytest.raises(SatmError, match=r"both hold .* with other values"):
        build_report([path, other], tmp_path / "clash")
    assert not (tmp_path / "clash").exists()


def test_an_output_directory_stands_for_its_records_file_and_a_torn_line_says_how_to_mend_it(
    tmp_path: Path,
) -> None:
    write_jsonl(tmp_path / "records.jsonl", in_domain_records())
    build_report([tmp_path], tmp_path / "rep")
    assert (tmp_path / "rep" / "summary.csv").is_file()
    with pytest.raises(SatmError, match=r"is a directory without a records\.jsonl"):
        build_report([tmp_path / "rep"], tmp_path / "rep2")
    torn = tmp_path / "torn.jsonl"
    torn.write_text((tmp_path / "records.jsonl").read_text() + '{"stage": "in-dom')
    with pytest.raises(SatmError, match="a torn last line: rerun the command that wrote it"):
        build_report([torn], tmp_path / "rep3")


def _with_set(rec: dict[str, Any], fingerprint: str, artifact: str) -> dict[str, Any]:
    return {**rec, "config": {**rec.get("config", {}), "set_fingerprint": fingerprint, "artifact": artifact}}


def test_one_set_evaluated_from_two_directories_counts_once_and_pooled_sets_are_named(tmp_path: Path) -> None:
    """The same artifact (same fingerprint) evaluated from two paths is one measurement; two different sets
    in one row (seeds of a study, or other settings) are pooled, and the README names the row and the sets."""
    recs = [r for r in in_domain_records() if r["method"] == "satm"]
    a = write_jsonl(tmp_path / "a.jsonl", [_with_set(r, "f" * 16, "runs/a") for r in recs])
    copy = write_jsonl(tmp_path / "copy.jsonl", [_with_set(r, "f" * 16, "elsewhere/a") for r in recs])
    build_report([a], tmp_path / "once")
    build_report([a, copy], tmp_path / "copied")
    summary = (tmp_path / "once" / "summary.csv").read_text()
    assert (tmp_path / "copied" / "summary.csv").read_text() == summary
    assert "Rows pooling" not in (tmp_path / "once" / "README.md").read_text()
    other = write_jsonl(tmp_path / "b.jsonl", [_with_set(r, "e" * 16, "runs/b") for r in recs])
    build_report([a, other], tmp_path / "pooled")
    readme = (tmp_path / "pooled" / "README.md").read_text()
    assert "Rows pooling the runs of several synthetic sets" in readme
    assert "2 sets (eeeeeeee: runs/b; ffffffff: runs/a)" in readme


def test_a_single_records_path_as_a_string_is_one_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", in_domain_records())
    build_report([path], tmp_path / "list")
    build_report(str(path), str(tmp_path / "str"))  # not the one-letter paths of its characters
    assert (tmp_path / "str" / "summary.csv").read_text() == (tmp_path / "list" / "summary.csv").read_text()


def _continual(value: float, seed: int, **config: Any) -> dict[str, Any]:
    return {"stage": "continual", "method": "satm", "dataset": "digits", "ipc": 10, "arch": "convnet",
            "seed": seed, "metric": "avg_accuracy", "step": 5, "value": value,
            "config": {"protocol": "naive", "steps": 5, "epochs": 5, **config}}


def test_a_class_order_from_two_files_is_warned_about_and_counted_once(tmp_path: Path) -> None:
    """Order 0 run with two condensed sets (in two files) beside order 1: one warning line naming the row,
    the order, the files and what the configs differ in; n = 2 class orders in summary and table."""
    a = write_jsonl(tmp_path / "a.jsonl",
                    [_continual(60.0, 0, iterations=60), _continual(90.0, 1, iterations=60)])
    b = write_jsonl(tmp_path / "b.jsonl", [_continual(70.0, 0, iterations=100)])
    said: list[str] = []
    build_report([a, b], tmp_path / "rep", warn=said.append)
    assert len(said) == 1
    assert said[0].startswith("continual · satm · digits · IPC 10 · convnet · naive · offline · 5 steps · "
                              "5 epochs: class order 0 measured more than once with other values")
    assert f"in {a}, {b}" in said[0] and "configs differ in iterations" in said[0]
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "Seeds measured more than once" in readme and "- continual · satm" in readme
    summary = (tmp_path / "rep" / "summary.csv").read_text().splitlines()
    assert summary[0].split(",")[14:18] == ["mean", "std", "n", "runs"]
    assert summary[1].split(",")[14:18] == ["77.5", "17.67766952966369", "2", "3"]
    assert "n = 2 class orders per cell." in (tmp_path / "rep" / "continual.md").read_text()
    # the same order measured with equal values is no conflict: nothing to warn about
    said.clear()
    c = write_jsonl(tmp_path / "c.jsonl", [_continual(60.0, 0, iterations=100)])
    build_report([a, c], tmp_path / "same", warn=said.append)
    assert said == [] and "Seeds measured" not in (tmp_path / "same" / "README.md").read_text()


def test_repeated_orders_name_their_sets_and_the_pooled_row(tmp_path: Path, capsys: Any) -> None:
    """With set fingerprints (continual records will carry them), the warning names the sets, the pooled
    row is listed as for in-domain, and the default warning goes to stderr."""
    a = write_jsonl(tmp_path / "a.jsonl", [_continual(60.0, 0, set_fingerprint="a" * 16, artifact="sets/a")])
    b = write_jsonl(tmp_path / "b.jsonl", [_continual(70.0, 0, set_fingerprint="b" * 16, artifact="sets/b")])
    build_report([a, b], tmp_path / "rep")
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "sets aaaaaaaa (sets/a), bbbbbbbb (sets/b)" in err
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "5 epochs: 2 sets (aaaaaaaa: sets/a; bbbbbbbb: sets/b)" in readme


def _tuned(method: str, arch: str, chosen: float, seed: int = 0) -> dict[str, Any]:
    grid = [0.001, 0.003, 0.01, 0.03, 0.1]
    selection = {"grid": grid, "split": "val", "runs": 1, "seed": 100 + seed, "chosen": chosen,
                 "val_accuracy": {repr(v): 50.0 for v in grid}, "at_grid_edge": chosen in (grid[0], grid[-1])}
    return {"stage": "cross-arch", "method": method, "dataset": "cifar10", "ipc": 10, "arch": arch,
            "seed": seed, "metric": "test_accuracy", "value": 60.0 + seed, "lr_protocol": "tuned",
            "config": {"epochs": 30, "lr": chosen, "lr_selection": selection}}


def test_tuned_lr_choices_are_listed_and_grid_edges_flagged(tmp_path: Path) -> None:
    """The LR `tuned` chose was in no table: the README lists it per method / dataset / IPC / arch, counts
    selections that chose another LR, and flags a choice at the grid's edge."""
    recs = [_tuned("satm", "convnet", 0.01, s) for s in range(2)]
    recs += [_tuned("satm", "mlp", 0.1, 0), _tuned("satm", "mlp", 0.03, 1)]
    build_report(write_jsonl(tmp_path / "r.jsonl", recs), tmp_path / "rep")
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "## Tuned learning rates" in readme
    rows = {line.split("|")[4].strip(): line for line in readme.splitlines() if line.startswith("| satm")}
    assert "| 0.01 " in rows["convnet"] and "⚠" not in rows["convnet"]
    assert "0.03 (1×); 0.1 (1×)" in rows["mlp"] and "⚠ largest LR of the grid" in rows["mlp"]
    assert "1 of these rows chose the smallest or largest LR of the grid" in readme
    plain = [{**r, "lr_protocol": None, "config": {"epochs": 30}} for r in recs]
    build_report(write_jsonl(tmp_path / "p.jsonl", plain), tmp_path / "plain")
    assert "Tuned learning rates" not in (tmp_path / "plain" / "README.md").read_text()


def test_rerun_into_an_old_report_removes_its_stale_files_only(tmp_path: Path) -> None:
    """A report over cross-arch records, then one over in-domain records into the same directory: the old
    cross-arch tables and plot are gone, a file the report does not own stays and is warned about."""
    out = tmp_path / "rep"
    build_report(write_jsonl(tmp_path / "a.jsonl", cross_arch_records()), out)
    assert (out / "cross-arch.md").is_file() and (out / "plots" / "cross-arch_bars.png").is_file()
    (out / "notes.md").write_text("mine")
    (out / "plots" / "extra.png").write_bytes(b"not ours")
    said: list[str] = []
    written = build_report(write_jsonl(tmp_path / "b.jsonl", in_domain_records()), out, warn=said.append)
    assert not (out / "cross-arch.md").exists() and not (out / "cross-arch.tex").exists()
    assert not (out / "plots" / "cross-arch_bars.png").exists()
    assert (out / "in-domain.md").is_file() and (out / "notes.md").read_text() == "mine"
    assert (out / "plots" / "extra.png").is_file()
    assert len(said) == 1 and "notes.md" in said[0] and "extra.png" in said[0]
    assert {p.name for p in written} >= {"in-domain.md", "README.md", "summary.csv"}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "cross-arch.md").write_text("someone else's")  # no report README: not ours to delete
    said.clear()
    build_report(tmp_path / "b.jsonl", foreign, warn=said.append)
    assert (foreign / "cross-arch.md").read_text() == "someone else's" and "cross-arch.md" in said[0]
