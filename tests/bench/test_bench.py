"""`satm-cl bench`: every suite runs at tiny sizes, and a failing or stuck child fails it fast."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from satm_cl.allocator import current as current_allocator
from satm_cl.bench import BenchOptions, Job, registry, run_bench, run_job
from satm_cl.cli import app
from satm_cl.errors import SatmError

TINY = BenchOptions(
    device="cpu",
    expert_images=40,
    expert_val_images=30,
    test_images=20,
    eval_images=20,
    eval_epochs=2,
    eval_runs=1,
    steps=(2,),
    iterations=1,
    keep=1,
    width=4,
    ipc=1,
    allocators=(),
    timeout_s=300,
)


def _check_run(
    tmp_path: Path, opts: BenchOptions, suites: tuple[str, ...] = ("all",)
) -> list[dict]:  # type: ignore[type-arg]
    rows = run_bench(tmp_path, list(suites), opts, echo=lambda _m: None, command="satm-cl bench (test)")
    expected = {"experts", "evaluate", "condense"} if "all" in suites else set(suites)
    assert {r["suite"] for r in rows} == expected
    ours = [r for r in rows if r["role"] == "ours"]
    # experts, evaluate (Fashion-MNIST- and digits-shaped sets), each condensation variant per N, and MTT
    # per N under every asked-for allocator other than the bench's own
    system = tuple(f"mtt [{a}]" for a in opts.allocators if a != current_allocator())
    others = ("experts" in expected) + 2 * ("evaluate" in expected)
    assert len(ours) == others + (len(opts.variants) + len(system)) * len(opts.steps)
    if "evaluate" in expected:
        digits = [r for r in ours if r["suite"] == "evaluate" and "digits" in r["figure"]]
        assert len(digits) == 1 and digits[0]["one_by_one"] > 0
    paired = opts.condense_ceiling  # without it the condensation rows stand alone (`--no-ceiling`)
    for r in ours:
        assert r["value"] > 0
        if paired or r["suite"] != "condense":
            assert r["ceiling"] > 0 and r["ratio"] == pytest.approx(r["value"] / r["ceiling"])
        else:
            assert r.get("ceiling") is None and "ratio" not in r
    condensed = {r["variant"] for r in rows if r["suite"] == "condense"}
    assert condensed == {*(("ceiling",) if paired else ()), *opts.variants, *system}
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(ln)["figure"] for ln in lines] == [r["figure"] for r in rows]
    readme = (tmp_path / "README.md").read_text()
    assert "satm-cl bench (test)" in readme and "Commit:" in readme and "ours/ceiling" in readme
    assert ("No ceiling for the rows of condense (`--no-ceiling` was given)" in readme) is not paired
    return rows


def test_tiny_bench_runs_every_suite(tmp_path: Path) -> None:
    """Each job is a fresh process (torch import dominates), so the fast test runs one variant (the bf16
    unroll, so both precisions run: the ceiling is fp32); experts are timed in both precisions."""
    rows = _check_run(tmp_path, replace(TINY, variants=("mtt+bf16",)))
    experts = next(r for r in rows if r["suite"] == "experts" and r["role"] == "ours")
    assert experts["bf16_images_per_s"] > 0
    assert "with `precision: bf16`" in (tmp_path / "README.md").read_text()


@pytest.mark.slow
def test_experts_ours_is_timed_in_fp32_whatever_the_preset_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The preset trains bf16 experts, but the figure set against the fp32 ceiling is ours in fp32; bf16 is
    timed once more as its own figure (it was bf16 against fp32 after the preset changed)."""
    import satm_cl.bench.experts as bench_experts

    seen: list[str] = []
    real = bench_experts.train_one_expert

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[6].precision)
        return real(*args, **kwargs)

    monkeypatch.setattr(bench_experts, "train_one_expert", spy)
    params = {"images": 32, "epochs": 1, "val_images": 16, "test_images": 16, "val_subset": 8}
    row = bench_experts.measure_experts({**params, "legacy": False, "device": "cpu"})
    assert seen == ["fp32", "fp32", "bf16"]  # ours twice (paired with the ceiling), then bf16 once
    assert row["value"] > 0 and row["bf16_images_per_s"] > 0


def test_tiny_bench_runs_every_variant_and_allocator(tmp_path: Path) -> None:
    """The condense suite alone and without its ceiling job (each job is a fresh process): the experts and
    evaluate suites, and condensation rows paired with their ceiling, are run and checked by
    test_tiny_bench_runs_every_suite; this run checks that `--no-ceiling` leaves them unpaired."""
    opts = replace(TINY, allocators=("jemalloc", "system"), condense_ceiling=False)
    rows = _check_run(tmp_path, opts, suites=("condense",))
    assert "system" in {r["allocator"] for r in rows}


def _bad_job() -> Job:
    return Job("condense", "condense", {"variant": "nope", "syn_steps": 2, "keep": 1, "width": 4, "ipc": 1})


def test_failing_child_fails_the_bench_with_its_error() -> None:
    t0 = time.perf_counter()
    with pytest.raises(SatmError, match=r"failed: KeyError: .*unknown condense variant 'nope'"):
        run_job(_bad_job(), timeout_s=120)
    assert time.perf_counter() - t0 < 120


def test_stuck_child_is_killed_at_its_timeout() -> None:
    t0 = time.perf_counter()
    with pytest.raises(SatmError, match=r"did not finish within 0\.5 s"):
        run_job(_bad_job(), timeout_s=0.5)
    assert time.perf_counter() - t0 < 10


def test_cli_exits_2_with_one_line_when_a_child_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.load_measurements()
    monkeypatch.setitem(registry.SUITES, "experts", lambda _opts: [_bad_job()])
    res = CliRunner().invoke(app, ["bench", "--suite", "experts", "--out", str(tmp_path), "--timeout", "120"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: bench job condense/condense") and len(res.stderr.splitlines()) == 1
    assert not (tmp_path / "README.md").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--suite", "nope"), "unknown bench suite 'nope'"),
        (("--steps", "10,x"), "--steps takes comma-separated integers"),
        (("--allocators", "tcmalloc"), "unknown allocator 'tcmalloc'"),
        (("--eval-runs", "0"), "must be ≥ 1"),
        (("--variants", "mtt,magic"), "unknown condense variant 'magic'"),
    ],
)
def test_bad_options_are_one_line_errors(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["bench", "--out", str(tmp_path), *args])
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.splitlines()) == 1


def test_condense_plan_without_the_ceiling_has_only_the_asked_variants() -> None:
    """`--no-ceiling` (N=80: the full-unroll ceiling does not fit in memory) plans no ceiling job."""
    from satm_cl.bench.condense import plan_condense

    opts = replace(TINY, steps=(10, 80), variants=("satm+tuh+tr",), allocators=())
    with_ceiling = [j.role for j in plan_condense(opts)]
    without = plan_condense(replace(opts, condense_ceiling=False))
    assert with_ceiling.count("ceiling") == 2
    assert [j.role for j in without] == ["ours", "ours"]
    assert [j.params["syn_steps"] for j in without] == [10, 80]


def test_interrupted_bench_keeps_the_previous_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from satm_cl.bench import runner

    (tmp_path / "results.jsonl").write_text('{"figure": "from the last complete bench"}\n')
    calls = iter([{"figure": "first", "suite": "experts", "role": "ours"}, KeyboardInterrupt()])

    def fake_run_job(_job: Job, _timeout: float) -> dict:  # type: ignore[type-arg]
        nxt = next(calls)
        if isinstance(nxt, BaseException):
            raise nxt
        return nxt

    monkeypatch.setattr(runner, "run_job", fake_run_job)
    with pytest.raises(KeyboardInterrupt):
        run_bench(tmp_path, ["all"], TINY, echo=lambda _m: None)
    assert (tmp_path / "results.jsonl").read_text() == '{"figure": "from the last complete bench"}\n'
    assert [json.loads(ln)["figure"] for ln in (tmp_path / runner.PARTIAL).read_text().splitlines()] == [
        "first"
    ]


def test_readme_says_which_rows_have_no_ceiling(tmp_path: Path) -> None:
    """With `--no-ceiling` the condensation rows stand alone: the README says so instead of promising one."""
    from satm_cl.bench.readme import write_readme

    rows = [
        {"suite": "experts", "role": "ceiling", "group": "g", "figure": "c", "value": 10.0, "threads": 1},
        {"suite": "experts", "role": "ours", "group": "g", "figure": "experts", "value": 8.0, "ceiling": 10.0,
         "ratio": 0.8, "threads": 1},
        {"suite": "condense", "role": "ours", "group": "N80", "figure": "satm", "value": 3.0, "threads": 1},
    ]
    ctx = {"command": "satm-cl bench --no-ceiling", "minutes": 1.0, "load_before": (0.0,),
           "load_after": (0.0,), "options": {"condense_ceiling": False}}
    readme = write_readme(tmp_path, rows, ctx).read_text()
    assert "No ceiling for the rows of condense (`--no-ceiling` was given)" in readme
    complete = write_readme(tmp_path, rows[:2], ctx).read_text()
    assert "No ceiling" not in complete
