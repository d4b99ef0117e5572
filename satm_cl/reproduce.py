"""`satm-cl reproduce TABLE`: plan and run every job behind one paper table, at cpu or paper scale.

A table spec (`benchmarks/tables/<name>.json`) lists, per scale, cells of (dataset, IPC, methods, seeds) for
the evaluation suites (with the scale's suites, archs, runs, epochs and evaluation-LR protocol), or
(dataset, steps, IPC, memories, orders) for the continual suite. `plan` turns a table into an ordered list
of `Step`s (condense, then evaluate or continual, then report); `run` checks that every dataset loads, then
runs the steps through the library functions. Each of those skips work already done, so a rerun resumes.

Layout under `out`: `artifacts/<dataset>-ipc<k>-<method>-s<seed>/` (condensed sets), `records.jsonl`
(evaluation; artifact / selection seed s is evaluated from base seed 10*s so seeds never share a record key),
`continual/records.jsonl` (one sub-directory per cell when two cells share a dataset and IPC, whose records
would otherwise collide), `report/` (tables and plots), `plan.txt` (the steps of the last run),
`timings.jsonl` (one line per step and run: its wall seconds; a resumed or already finished step counts only
what this run did).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from satm_cl.errors import SatmError

if TYPE_CHECKING:
    from satm_cl.config import CondenseConfig
    from satm_cl.continual.runner import ContinualRequest
    from satm_cl.evaluate.runner import EvalRequest
    from satm_cl.execution import ExecConfig

TABLES_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "tables"
SCALES = ("cpu", "paper")
SEED_STRIDE = 10  # artifact / selection seed s is evaluated with base seed SEED_STRIDE * s (runs <= stride)
CONDENSED = ("satm", "mtt")
RECORDS = "records.jsonl"
EVAL_KEYS = ("dataset", "ipc", "methods", "seeds")
CONTINUAL_KEYS = ("dataset", "steps", "ipc", "memories", "orders")
StepKind = Literal["condense", "evaluate", "continual", "report"]


@dataclass(frozen=True)
class Step:
    """One job: `kind` says which library call runs it; the fields for that kind hold its exact arguments."""

    kind: StepKind
    out: Path  # artifact dir (condense), records dir (evaluate, continual) or report dir
    condense: CondenseConfig | None = None
    evaluate: EvalRequest | None = None
    continual: ContinualRequest | None = None
    records: tuple[Path, ...] = ()  # report inputs
    artifacts: tuple[Path, ...] = ()  # report: image grids and condensation curves

    def describe(self) -> str:
        """The step as one human-readable line."""
        if self.condense is not None:
            cfg = self.condense
            return f"condense {cfg.method} {cfg.dataset} ipc{cfg.ipc} seed {cfg.seed} -> {self.out}"
        if self.evaluate is not None:
            e = self.evaluate
            what = f"{e.synthetic}" if e.synthetic is not None else f"baseline {e.baseline} {e.dataset}"
            what += "" if e.synthetic is not None or e.ipc is None else f" ipc{e.ipc}"
            archs = f" archs {','.join(e.archs)}" if e.archs else ""
            runs = f"{e.runs} run{'s' if e.runs != 1 else ''}"
            lrs = "" if e.lr_protocol == "learned" else f", lr {e.lr_protocol}"
            return (
                f"evaluate {what}: {','.join(e.suites)}{archs}{lrs}, {runs} from seed {e.seed} "
                f"-> {self.out / 'records.jsonl'}"
            )
        if self.continual is not None:
            c = self.continual
            epochs = "the preset's eval epochs" if c.epochs is None else f"{c.epochs} epochs"
            return (
                f"continual {c.dataset} {c.steps} steps ipc{c.ipc}: {','.join(c.memories)} x {c.orders} "
                f"orders, {c.protocol} {epochs} per step -> {self.out / 'records.jsonl'}"
            )
        return f"report {', '.join(map(str, self.records))} -> {self.out}"


def list_tables() -> list[str]:
    """Names of the table specs in benchmarks/tables, sorted."""
    return sorted(p.stem for p in TABLES_DIR.glob("*.json"))


def load_table(name: str) -> dict[str, Any]:
    """A table spec by name (or path to a JSON file), checked; unknown or malformed is a SatmError."""
    path = Path(name) if name.endswith(".json") else TABLES_DIR / f"{name}.json"
    if not path.is_file():
        raise SatmError(f"unknown table {name!r}; valid: {', '.join(list_tables())}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SatmError(f"cannot read table spec {path}: {exc}") from None
    _check_spec(data, path)
    return data


def _check_spec(data: Any, path: Path) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise SatmError(f"malformed table spec {path}: {what}")

    need(isinstance(data, dict), "not a JSON object")
    for key in ("title", "paper_ref"):
        need(isinstance(data.get(key), str), f"needs a string {key!r}")
    scales = data.get("scales")
    need(isinstance(scales, dict) and all(s in scales for s in SCALES), f"needs scales {', '.join(SCALES)}")
    for scale, spec in scales.items():
        need(isinstance(spec, dict), f"scale {scale!r} is not an object")
        suites = spec.get("suites")
        need(isinstance(suites, list) and bool(suites), f"scale {scale!r} needs a non-empty 'suites' list")
        cells = spec.get("cells")
        need(isinstance(cells, list), f"scale {scale!r} needs a 'cells' list")
        continual = "continual" in suites
        need(not continual or suites == ["continual"], f"scale {scale!r}: continual mixed with other suites")
        keys = CONTINUAL_KEYS if continual else EVAL_KEYS
        if not continual:
            need(isinstance(spec.get("runs"), int), f"scale {scale!r} needs an integer 'runs'")
        for i, cell in enumerate(cells):
            missing = [k for k in keys if not isinstance(cell, dict) or k not in cell]
            need(not missing, f"scale {scale!r} cell {i} lacks {', '.join(missing)}")


def plan(
    table: str,
    scale: str = "cpu",
    data_dir: Path | None = None,
    out: Path | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
) -> list[Step]:
    """The ordered steps reproducing `table` at `scale`: condense, evaluate or continual, then report."""
    spec = _scale_spec(load_table(table), table, scale)
    out = Path(out) if out is not None else default_out(table, scale)
    condense: list[Step] = []
    if spec["suites"] == ["continual"]:
        work, reports = _plan_continual(spec, out, condense, device, data_dir, cache_dir)
    else:
        work = _plan_evaluation(spec, out, condense, device, data_dir)
        grids = tuple(s.out for s in condense if s.condense is not None and s.condense.seed == 0)
        reports = [Step("report", out / "report", records=(out / RECORDS,), artifacts=grids)]
    return [*condense, *work, *reports] if work else []


def _add_condense(condense: list[Step], out: Path, cfg: CondenseConfig) -> Path:
    """Append a condense step for `cfg` (once) and return its artifact directory."""
    where = artifact_dir(out, cfg.dataset, cfg.ipc, cfg.method, cfg.seed)
    step = Step("condense", where, condense=cfg)
    if step not in condense:
        condense.append(step)
    return where


def _plan_evaluation(
    spec: dict[str, Any], out: Path, condense: list[Step], device: str, data_dir: Path | None
) -> list[Step]:
    from satm_cl.config import resolve_config
    from satm_cl.evaluate.runner import EvalRequest

    common: dict[str, Any] = {
        "suites": tuple(spec["suites"]),
        "runs": _check_eval_scale(spec),
        "archs": None if spec.get("archs") is None else tuple(spec["archs"]),
        "epochs": spec.get("epochs"),
        "cross_arch_epochs": spec.get("cross_arch_epochs"),
        "lr_protocol": spec.get("lr_protocol", "learned"),
        "out": out,
        "device": device,
        "data_dir": data_dir,
    }
    work: list[Step] = []
    for cell in spec["cells"]:
        for method in cell["methods"]:
            for s in cell["seeds"]:
                if method in CONDENSED:
                    cfg = resolve_config(cell["dataset"], cell["ipc"], method, overrides={"seed": s})
                    art = _add_condense(condense, out, cfg)
                    source: dict[str, Any] = {
                        "synthetic": art,
                        "baseline": None,
                        "dataset": None,
                        "ipc": None,
                    }
                else:
                    ipc = None if method == "full" else cell["ipc"]
                    source = {"synthetic": None, "baseline": method, "dataset": cell["dataset"], "ipc": ipc}
                step = Step("evaluate", out, evaluate=EvalRequest(**source, seed=SEED_STRIDE * s, **common))
                if step not in work:  # `full` ignores the IPC: one evaluation per dataset and seed
                    work.append(step)
    return work


def _plan_continual(
    spec: dict[str, Any],
    out: Path,
    condense: list[Step],
    device: str,
    data_dir: Path | None,
    cache_dir: Path | None,
) -> tuple[list[Step], list[Step]]:
    """Continual steps and their report steps (one per cell when two cells share dataset and IPC)."""
    from satm_cl.continual.presets import condense_config
    from satm_cl.continual.runner import ContinualRequest, validate

    cells = spec["cells"]
    pairs = [(c["dataset"], c["ipc"]) for c in cells]
    split = len(set(pairs)) < len(pairs)  # their records would share keys and their configs clash
    work: list[Step] = []
    reports: list[Step] = []
    for cell in cells:
        memories = tuple(cell["memories"])
        synthetic = {
            m: _add_condense(condense, out, condense_config(cell["dataset"], cell["ipc"], m))
            for m in CONDENSED
            if m in memories
        }
        name = f"{cell['dataset']}-{cell['steps']}steps-ipc{cell['ipc']}"
        where = out / "continual" / name if split else out / "continual"
        req = ContinualRequest(
            dataset=cell["dataset"],
            steps=cell["steps"],
            ipc=cell["ipc"],
            memories=memories,
            orders=cell["orders"],
            out=where,
            device=device,
            data_dir=data_dir,
            cache_dir=cache_dir,
            synthetic=synthetic or None,
            epochs=spec.get("epochs"),
        )
        validate(req)
        work.append(Step("continual", where, continual=req))
        if split:
            grids = tuple(synthetic.values())
            reports.append(Step("report", out / "report" / name, records=(where / RECORDS,), artifacts=grids))
    if not split and work:
        grids = tuple(s.out for s in condense)
        reports.append(
            Step("report", out / "report", records=(out / "continual" / RECORDS,), artifacts=grids)
        )
    return work, reports


def _scale_spec(data: dict[str, Any], table: str, scale: str) -> dict[str, Any]:
    if scale not in data["scales"]:
        raise SatmError(f"unknown scale {scale!r} for table {table}; valid: {', '.join(data['scales'])}")
    return dict(data["scales"][scale])


def _check_eval_scale(spec: dict[str, Any]) -> int:
    """Validate suites, archs, methods and runs of an evaluation scale before any work; return runs."""
    from satm_cl.baselines import SELECTORS
    from satm_cl.evaluate.lr_protocol import expand_lr_protocols
    from satm_cl.evaluate.runner import expand_suites
    from satm_cl.models import list_models

    expand_suites(tuple(spec["suites"]))
    expand_lr_protocols(str(spec.get("lr_protocol", "learned")))
    runs = int(spec["runs"])
    if not 1 <= runs <= SEED_STRIDE:
        raise SatmError(
            f"runs must be in 1..{SEED_STRIDE} (seed s is evaluated from base seed {SEED_STRIDE}*s)"
        )
    for arch in spec.get("archs") or ():
        if arch not in list_models():
            raise SatmError(f"unknown arch {arch!r}; valid: {', '.join(list_models())}")
    valid = [*CONDENSED, *SELECTORS.names()]
    for cell in spec["cells"]:
        for method in cell["methods"]:
            if method not in valid:
                raise SatmError(f"unknown method {method!r}; valid: {', '.join(valid)}")
    return runs


def default_out(table: str, scale: str) -> Path:
    """`results/reproduce/<table>-<scale>`."""
    return Path("results/reproduce") / f"{Path(table).stem}-{scale}"


def artifact_dir(out: Path, dataset: str, ipc: int, method: str, seed: int) -> Path:
    """Where a condensed set of the plan lives: `<out>/artifacts/<dataset>-ipc<k>-<method>-s<seed>`."""
    return Path(out) / "artifacts" / f"{dataset}-ipc{ipc}-{method}-s{seed}"


def needed_datasets(steps: Sequence[Step]) -> list[str]:
    """Every dataset the steps load, including the offline out-of-domain partners, in first-use order."""
    from satm_cl.evaluate.suites import OOD_PARTNERS

    names: list[str] = []
    for s in steps:
        if s.condense is not None:
            names.append(s.condense.dataset)
        if s.continual is not None:
            names.append(s.continual.dataset)
        if s.evaluate is not None:
            e = s.evaluate
            dataset = e.dataset if e.dataset is not None else _artifact_dataset(steps, e.synthetic)
            names.append(dataset)
            if "ood" in e.suites and dataset in OOD_PARTNERS:
                names.append(OOD_PARTNERS[dataset])
    return list(dict.fromkeys(names))


def _artifact_dataset(steps: Sequence[Step], artifact: Path | None) -> str:
    for s in steps:
        if s.condense is not None and s.out == artifact:
            return s.condense.dataset
    raise SatmError(f"no condense step makes {artifact}")


def check_datasets(steps: Sequence[Step], data_dir: Path | None, what: str) -> None:
    """One SatmError naming every needed dataset that does not load here, with its hint."""
    from satm_cl.data import dataset_status

    status = {name: dataset_status(name, data_dir) for name in needed_datasets(steps)}
    missing = [f"{name} {hint}" for name, hint in status.items() if hint != "ready"]
    if missing:
        raise SatmError(f"cannot reproduce {what} here: {'; '.join(missing)}")


def run(
    table: str,
    scale: str = "cpu",
    out: Path | None = None,
    device: str = "auto",
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    executor: ExecConfig | None = None,
) -> list[Step]:
    """Run the plan of `table` at `scale` (each step resumes), or only print it with `dry_run`; return it.

    With `executor`, the condense steps run as one grid (after their experts, one grid per store), and
    each evaluate / continual step hands its own grid to the executor."""
    from satm_cl.data import check_data_dir
    from satm_cl.io import check_out_dir, make_out_dir

    out = check_out_dir(Path(out) if out is not None else default_out(table, scale))
    check_data_dir(data_dir)
    if cache_dir is not None:
        check_out_dir(cache_dir, "--cache-dir")
    steps = plan(table, scale, data_dir, out=out, device=device, cache_dir=cache_dir)
    if not steps:
        note = load_table(table)["scales"][scale].get("note", "the table lists no cells at this scale")
        raise SatmError(f"nothing to reproduce for {table} at {scale} scale: {note}")
    lines = [f"[{i}/{len(steps)}] {s.describe()}" for i, s in enumerate(steps, 1)]
    if dry_run:
        for line in lines:
            echo(line)
        try:  # say now what a real run would stop at, before it is started
            check_datasets(steps, data_dir, f"{table} at {scale} scale")
        except SatmError as exc:
            echo(f"note: a real run would stop before its first step: {exc}")
        return steps
    from satm_cl.device import resolve_device

    torch_device = resolve_device(device)  # a bad --device fails here, before any work
    check_datasets(steps, data_dir, f"{table} at {scale} scale")
    make_out_dir(out)
    (out / "plan.txt").write_text("\n".join(lines) + "\n")
    if executor is None:  # everything in turn, in this process
        for line, step in zip(lines, steps, strict=True):
            echo(line)
            _timed(out, line, echo, partial(_run_step, step, torch_device, data_dir, cache_dir, echo))
        return steps
    numbered = list(zip(lines, steps, strict=True))
    condense_steps = [(line, s) for line, s in numbered if s.condense is not None]
    if condense_steps:
        _timed(out, f"condense grid ({len(condense_steps)} steps)", echo,
               partial(_run_condense_grid, condense_steps, torch_device, data_dir, cache_dir, echo, executor))
    for line, step in numbered:
        if step.condense is None:
            echo(line)
            work = partial(_run_step, step, torch_device, data_dir, cache_dir, echo, executor)
            _timed(out, line, echo, work)
    return steps


def _timed(out: Path, what: str, echo: Callable[[str], None], work: Callable[[], object]) -> None:
    """Run `work`, say how long it took, and append that to `out/timings.jsonl` (a table's cost on this
    machine is then on disk beside its records)."""
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    echo(f"  done in {seconds / 60:.1f} min" if seconds >= 60 else f"  done in {seconds:.1f} s")
    line = {"step": what, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                 time.gmtime())}
    with open(out / "timings.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


@dataclass(frozen=True)
class CondenseJob:
    """One condense step as a grid job (absolute paths: a worker may run elsewhere)."""

    cfg: CondenseConfig
    out: Path
    device: str
    cache_dir: Path | None
    data_dir: Path | None


def condense_job(job: CondenseJob) -> str:
    """Worker side: condense one set into `job.out` (resumes from its checkpoint)."""
    import torch

    from satm_cl.condense import api

    api.condense(
        job.cfg,
        job.out,
        torch.device(job.device),
        cache_root=job.cache_dir,
        data_dir=job.data_dir,
        resume=True,
        progress=False,
    )
    return str(job.out)


def _run_condense_grid(
    numbered: list[tuple[str, Step]],
    device: Any,
    data_dir: Path | None,
    cache_dir: Path | None,
    echo: Callable[[str], None],
    executor: ExecConfig,
) -> None:
    """Every unfinished condense step as one job; each expert store is completed first (as its own
    grid), so parallel condensations never train the same experts."""
    from satm_cl.execution import Job, raise_failures, run_jobs
    from satm_cl.experts.train import train_experts
    from satm_cl.io import cache_dir as default_cache

    todo = []
    for line, step in numbered:
        echo(line)
        assert step.condense is not None
        if _finished(step.out, step.condense):
            echo(f"  done already: {step.out}")
        else:
            todo.append(step)
    if not todo:
        return
    root = default_cache(cache_dir).resolve()
    for expert in {
        json.dumps(s.condense.expert.to_dict(), sort_keys=True): s.condense.expert
        for s in todo
        if s.condense is not None
    }.values():
        train_experts(expert, root, device, data_dir=data_dir, executor=executor)
    data = None if data_dir is None else Path(data_dir).resolve()
    jobs = [
        Job(
            f"condense {s.describe()}",
            condense_job,
            CondenseJob(s.condense, Path(s.out).resolve(), str(device), root, data),
        )
        for s in todo
        if s.condense is not None
    ]
    raise_failures(run_jobs(jobs, executor))


def _run_step(
    step: Step,
    device: Any,
    data_dir: Path | None,
    cache_dir: Path | None,
    echo: Callable[[str], None],
    executor: ExecConfig | None = None,
) -> None:
    grid = {} if executor is None else {"executor": executor}  # None: the runners' in-process default
    if step.condense is not None:
        if _finished(step.out, step.condense):
            echo(f"  done already: {step.out}")
            return
        from satm_cl.condense import api

        api.condense(step.condense, step.out, device, cache_root=cache_dir, data_dir=data_dir, resume=True)
    elif step.evaluate is not None:
        from satm_cl.evaluate import runner

        runner.run_evaluation(step.evaluate, **grid)
    elif step.continual is not None:
        from satm_cl.continual import runner as continual_runner

        continual_runner.run_continual(step.continual, **grid)
    else:
        import satm_cl.report as report

        files = report.build_report(list(step.records), step.out, list(step.artifacts))
        echo(f"  wrote {len(files)} files to {step.out}")


def _finished(artifact: Path, cfg: CondenseConfig) -> bool:
    """True when `artifact` already holds the set this config makes (then condensing again is skipped)."""
    from satm_cl.synthetic import META_FILE

    try:
        meta = json.loads((artifact / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("config") == json.loads(json.dumps(cfg.to_dict()))


def describe_tables() -> list[tuple[str, str]]:
    """(name, title) of every table, for listings."""
    return [(name, load_table(name)["title"]) for name in list_tables()]


__all__ = [
    "SCALES",
    "SEED_STRIDE",
    "Step",
    "artifact_dir",
    "check_datasets",
    "default_out",
    "describe_tables",
    "list_tables",
    "load_table",
    "needed_datasets",
    "plan",
    "run",
]
