"""The `satm-cl` command line: one thin typer function per command; logic lives in the library."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 vendors click as typer._click; older typer uses click itself
    from typer._click import Context
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click import Context, UsageError  # type: ignore[assignment]
    from click.exceptions import NoArgsIsHelpError  # type: ignore[assignment]

from satm_cl.errors import SatmError
from satm_cl.progress import warning_lines


class _OneLineUsageError(UsageError):
    """A usage error shown as one `error:` line (with where to get help), like every other bad input.
    `where`: the command path for the hint when click's error has no context (a missing option value)."""

    def __init__(self, message: str, ctx: Context | None = None, where: str | None = None) -> None:
        super().__init__(message, ctx)
        self.where = ctx.command_path if ctx is not None else where

    def show(self, file: Any = None) -> None:
        hint = f" (see {self.where} --help)" if self.where else ""
        typer.echo(f"error: {self.format_message()}{hint}", err=True)


@contextmanager
def _one_line_usage(where: str | None = None) -> Iterator[None]:
    try:
        yield
    except (_OneLineUsageError, NoArgsIsHelpError):
        raise
    except UsageError as exc:
        raise _OneLineUsageError(exc.format_message(), exc.ctx, where) from None


class _Group(TyperGroup):
    """The command group: bad options, values and commands exit 2 with one line on stderr, no usage block."""

    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        with _one_line_usage():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Context) -> Any:
        words = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []
        where = f"{ctx.command_path} {words[0]}" if words and words[0] in self.commands else ctx.command_path
        with _one_line_usage(where):
            return super().invoke(ctx)


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="SATM dataset condensation and the benchmarks that say what condensed images are worth. "
    "Runs on jemalloc (never returning memory to the kernel, which makes unrolled hypergradients "
    "about twice as fast) when libjemalloc.so.2 is installed: the command re-executes itself with "
    "LD_PRELOAD; set SATM_CL_ALLOCATOR=system to opt out (the artifact records compute.allocator).",
)
T = TypeVar("T")

DataDir = Annotated[Path | None, typer.Option(help="Directory holding datasets that are not embedded.")]
CacheDir = Annotated[
    Path | None,
    typer.Option(help="Where expert trajectories are cached [default: $SATM_CL_CACHE or ~/.cache/satm-cl]."),
]
Device = Annotated[str, typer.Option(help="auto (CUDA if available), cpu or cuda.")]
Executor = Annotated[
    str, typer.Option(help="Where the grid's jobs run: local (this machine) or ray (a Ray cluster).")
]
Jobs = Annotated[int, typer.Option(help="local: worker processes (1 = in this process).")]
RayAddress = Annotated[
    str | None, typer.Option(help="ray: HEAD_IP:PORT of a running cluster [default: start a local Ray].")
]
Threads = Annotated[int, typer.Option(help="Torch threads (and CPUs) per job; results depend on it.")]
GpusPerJob = Annotated[float, typer.Option(help="ray: GPUs each task asks for (with --device cuda).")]


def _exec_config(
    executor: str, jobs: int, ray_address: str | None, threads: int, gpus: float, start: bool = True
) -> Any:
    """The ExecConfig of the grid options (`satm_cl.execution`); an unknown executor is a SatmError.
    With `start`, Ray (if chosen) starts connecting in the background while the command plans."""
    from satm_cl.execution import EXECUTORS, ExecConfig, check_exec_config, start_early

    EXECUTORS.get(executor)
    cfg = ExecConfig(executor=executor, jobs=jobs, ray_address=ray_address, threads=threads, gpus=gpus)
    check_exec_config(cfg)  # before any planning or progress bar
    if start:
        start_early(cfg)
    return cfg


RERUN = "rerun the same command"  # what resumes an interrupted command, unless it says otherwise


def _guard(fn: Callable[[], T], resume: str = RERUN) -> T:
    """Run a command body; a SatmError becomes one line on stderr and exit code 2, an interrupt exit code
    130 with how to continue (`resume`: what the user reruns). Package warnings print as `warning: ...`."""
    warning_lines()
    try:
        return fn()
    except SatmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # the file system refused (permissions, disk full): still one line, exit 2
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(f"interrupted; finished work is saved ({resume})", err=True)
        raise typer.Exit(130) from None


def split_list(*values: str) -> list[str]:
    """The names of comma-separated (and/or repeated) list options, each stripped of surrounding
    whitespace, empty ones dropped: `"satm, herding"` is satm and herding, not satm and ' herding'."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _read_json(path: Path | None) -> dict[str, Any] | None:
    """A JSON object from `path` (None when no path); unreadable or non-object files are a SatmError."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SatmError(f"cannot read JSON file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SatmError(f"{path} must hold a JSON object")
    return data


@app.command()
def datasets(data_dir: DataDir = None) -> None:
    """List every dataset with its status: ready, needs --data-dir, or needs an extra."""
    from satm_cl.data import dataset_status, list_datasets

    def body() -> None:
        for name in list_datasets():
            typer.echo(f"{name:14s} {dataset_status(name, data_dir)}")

    _guard(body)


@app.command()
def download(
    dataset: Annotated[str, typer.Argument(help="cifar10, cifar100, mnist or svhn.")],
    data_dir: Annotated[Path, typer.Option(help="Directory to download into (created if missing).")],
) -> None:
    """Download a dataset torchvision can fetch into --data-dir; later commands read it from there."""

    def body() -> None:
        from satm_cl.data import DOWNLOADABLE, create_dataset

        if dataset not in DOWNLOADABLE:
            raise SatmError(f"satm-cl cannot download {dataset!r} (it can: {', '.join(DOWNLOADABLE)}); "
                            "`satm-cl datasets` says where each dataset's files go")
        data_dir.mkdir(parents=True, exist_ok=True)
        splits = create_dataset(dataset, data_dir=data_dir, download=True)
        n_train = len(splits.train.y) + len(splits.val.y)
        typer.echo(f"{dataset} ready in {data_dir}: {n_train} train and {len(splits.test.y)} test images")

    _guard(body)


@app.command()
def presets() -> None:
    """List condensation presets (DATASET-ipcK) and their main settings."""
    from satm_cl.config import PRESETS
    from satm_cl.experts.config import ExpertConfig

    width = max(len(f"{name}-ipc{ipc}") for name, ipc in PRESETS)
    for (name, ipc), p in sorted(PRESETS.items()):
        typer.echo(
            f"{f'{name}-ipc{ipc}':<{width}}  syn_steps={p['syn_steps']} expert_epochs={p['expert_epochs']} "
            f"max_start={p['max_start_epoch']} lr_img={p['lr_img']:g} iterations={p['iterations']} "
            f"eval_epochs={p['eval_epochs']} zca={p['expert'].get('zca', False)} "
            f"experts={p['expert'].get('num_experts', ExpertConfig.num_experts)}x"
            f"{p['expert'].get('epochs', ExpertConfig.epochs)} precision={p.get('precision', 'fp32')}"
            + "".join(
                f"  [{m}: " + " ".join(f"{k}={v}" for k, v in vals.items()) + "]"
                for m, vals in p.get("per_method", {}).items()
            )
        )


@app.command()
def experts(
    dataset: Annotated[str, typer.Option(help="Registry dataset name (see `satm-cl datasets`).")] = "digits",
    ipc: Annotated[int, typer.Option(help="Use the expert settings of this IPC's preset.")] = 1,
    num_experts: Annotated[
        int | None, typer.Option(help="Number of experts [default: the preset's].")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per expert [default: the preset's].")] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Forward-pass arithmetic: fp32, or bf16 (autocast; ~1.5x faster where the CPU or GPU has "
            "native bf16, about 7x slower where it has not, and a warning says so; not bitwise fp32; its "
            "own store) [default: the preset's]."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of config overrides, as for `condense --config`: its `expert` part sets these "
            'experts (e.g. {"expert": {"zca": true}}), so they are the store that condense run will use.'
        ),
    ] = None,
    seed: int = 0,
    device: Device = "auto",
    cache_dir: CacheDir = None,
    data_dir: DataDir = None,
    executor: Executor = "local",
    jobs: Jobs = 1,
    ray_address: RayAddress = None,
    threads: Threads = 1,
    gpus_per_job: GpusPerJob = 0.0,
) -> None:
    """Train expert trajectories on the real train split (resumable; cached by settings; one job each)."""

    def body() -> None:
        from dataclasses import replace

        from satm_cl.config import resolve_config
        from satm_cl.device import resolve_device
        from satm_cl.experts.train import train_experts
        from satm_cl.io import cache_dir as default_cache

        # experts have no --preset: an IPC without one simply trains the library defaults' experts
        cfg = resolve_config(dataset, ipc, config_file=config, note=lambda _line: None).expert
        changes: dict[str, Any] = {"seed": seed}
        if num_experts is not None:
            changes["num_experts"] = num_experts
        if epochs is not None:
            changes["epochs"] = epochs
        if precision is not None:
            changes["precision"] = precision
        cfg = replace(cfg, **changes)
        grid = _exec_config(executor, jobs, ray_address, threads, gpus_per_job)
        store = train_experts(
            cfg,
            default_cache(cache_dir),
            resolve_device(device),
            data_dir=data_dir,
            executor=grid,
            say=lambda m: typer.echo(m, err=True),
        )
        for key, entry in sorted(store.manifest["experts"].items(), key=lambda kv: int(kv[0])):
            acc = entry["accuracy"]
            typer.echo(
                f"expert {int(key):3d}: train {acc['train'][-1]:.1f}%  val {acc['val'][-1]:.1f}%  "
                f"test {acc['test'][-1]:.1f}%"
            )
        typer.echo(f"store: {store.path}")

    _guard(body)


def _condense_target(
    dataset: str | None, ipc: int | None, preset: str | None
) -> tuple[str | None, int | None]:
    """The (dataset, IPC) a condense command means: a --preset's unless --dataset says another dataset
    (refused: the preset would silently replace it)."""
    if preset is not None:
        name, _, text = preset.rpartition("-ipc")
        if dataset is not None and name and dataset != name:
            raise SatmError(f"--preset {preset} is for {name}, not --dataset {dataset}; drop one of them")
        return (name or preset), int(text) if text.isdigit() else 1
    return dataset, ipc


@app.command()
def condense(
    dataset: Annotated[
        str | None, typer.Option(help="Registry dataset name [default: the --preset's, else digits].")
    ] = None,
    ipc: Annotated[
        int | None,
        typer.Option(help="Synthetic images per class [default: the --preset's, else 1; with --preset: its "
                     "settings at this IPC]."),
    ] = None,
    method: Annotated[
        str, typer.Option(help="satm or mtt (MTT = SATM with sharpness and approximations off).")
    ] = "satm",
    iterations: Annotated[int | None, typer.Option(help="Outer iterations [default: the preset's].")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Artifact directory [default: artifacts/DATASET-ipcK-METHOD-sSEED].")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="DATASET-ipcK preset (see `satm-cl presets`).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="JSON file of config overrides (applied after the preset).")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Forward-pass arithmetic of the unroll and of the experts it matches: fp32, or bf16 "
            "(autocast; faster only where the CPU or GPU has native bf16, else about 7x slower, and a "
            "warning says so; not bitwise fp32) [default: the preset's]."
        ),
    ] = None,
    seed: int = 0,
    device: Device = "auto",
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out.")] = False,
    cache_dir: CacheDir = None,
    data_dir: DataDir = None,
    executor: Annotated[
        str, typer.Option(help="Where missing experts train: local (this machine) or ray (a Ray cluster).")
    ] = "local",
    jobs: Annotated[
        int,
        typer.Option(
            help="Missing experts trained this many at a time, one worker process each (1 = one after "
            "another in this process, with its threads). The unroll runs in this process either way."
        ),
    ] = 1,
    ray_address: RayAddress = None,
    threads: Annotated[
        int,
        typer.Option(
            help="Torch threads per expert job (default 1 each with --jobs > 1 or ray; with neither, experts "
            "use this process's threads, e.g. OMP_NUM_THREADS); results depend on it."
        ),
    ] = 1,
    gpus_per_job: GpusPerJob = 0.0,
) -> None:
    """Condense a dataset into per-class synthetic images (a SyntheticSet artifact).

    Experts not yet in the cache are trained first; on a machine with several cores `--jobs N` trains N
    at a time (same bytes as one after another with the same --threads)."""

    def body() -> None:
        from satm_cl.condense import condense as run
        from satm_cl.config import resolve_config
        from satm_cl.device import resolve_device

        name, size = _condense_target(dataset, ipc, preset)
        cfg = resolve_config(
            name,
            size,
            method,
            preset=preset,
            config_file=config,
            note=lambda line: typer.echo(line, err=True),
            overrides={
                "ipc": ipc,
                "iterations": iterations,
                "seed": seed,
                **({} if precision is None else {"precision": precision, "expert": {"precision": precision}}),
            },
        )
        target = out or Path("artifacts") / f"{cfg.dataset}-ipc{cfg.ipc}-{cfg.method}-s{cfg.seed}"
        # the default (one local job) keeps training experts in this process, as before the option existed
        grid = (
            _exec_config(executor, jobs, ray_address, threads, gpus_per_job)
            if jobs != 1 or executor != "local" or threads != 1
            else None
        )
        syn = run(
            cfg,
            target,
            resolve_device(device),
            cache_root=cache_dir,
            data_dir=data_dir,
            resume=resume,
            say=lambda m: typer.echo(m, err=True),
            executor=grid,
        )
        sel = syn.meta["selection"]
        if int(syn.meta["iterations"]) == 0:
            chosen = "the starting images: no iteration ran"
        elif sel["iteration"] < 0:  # no validation: the images of the last iteration
            last = syn.meta["iterations"]
            chosen = f"the images of iteration {last}, the last one: no validation ran to select another"
        else:
            chosen = (f"selected at iteration {sel['iteration']} by {sel['rule']}: "
                      f"{sel['val_accuracy']:.1f}% val")
            if sel["iteration"] == 0:  # the condensation never beat its own starting images on val
                chosen += "; these are the starting real images: no iteration improved on them"
        typer.echo(f"wrote {target} ({syn.images.shape[0]} images, lr {syn.lr:.4g}, {chosen})")

    _guard(body, resume="rerun the same command with --resume to continue from its last checkpoint")


@app.command()
def show(
    artifact: Annotated[Path, typer.Argument(help="A SyntheticSet directory.")],
    out: Annotated[Path | None, typer.Option(help="PNG path [default: ARTIFACT/grid.png].")] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the metadata as one JSON object (not-applicable values as null) "
                     "instead of `key: value` lines."),
    ] = False,
) -> None:
    """Write a PNG grid of an artifact's images (ZCA inverted, de-normalised) and print its metadata."""

    def body() -> None:
        from satm_cl.io import check_out_file
        from satm_cl.report.plots import plot_image_grid
        from satm_cl.synthetic import load_synthetic, shown_lines, shown_meta

        syn = load_synthetic(artifact)
        target = check_out_file(out or artifact / "grid.png")
        meta = shown_meta(syn.meta)
        path = plot_image_grid(
            syn.pixels(),
            syn.labels,
            syn.meta["class_names"],
            target,
            title=f"{meta['method']} {meta['dataset']} ipc {meta['ipc']}",
        )
        if as_json:
            typer.echo(json.dumps({**shown_meta(syn.meta, words=False), "lr": syn.lr, "grid": str(path)}))
        else:
            typer.echo("\n".join(shown_lines({**meta, "lr": syn.lr, "grid": str(path)})))

    _guard(body)


BenchSuites = Annotated[list[str], typer.Option(help="experts, evaluate, condense or all (repeatable).")]


@app.command()
def bench(
    suite: BenchSuites = ["all"],  # noqa: B006
    out: Annotated[
        Path,
        typer.Option(help="Directory for results.jsonl, README.md and the plot; a finished bench replaces "
                     "the results there (`nox -s bench` writes the committed results/perf)."),
    ] = Path("runs/perf"),
    device: Device = "auto",
    steps: Annotated[str, typer.Option(help="condense: comma-separated syn_steps values.")] = "10,20,40",
    iterations: Annotated[int, typer.Option(help="condense: timed outer iterations per job.")] = 2,
    keep: Annotated[int, typer.Option(help="condense: TUH keeps this many inner steps.")] = 10,
    width: Annotated[int, typer.Option(help="condense: ConvNet-3 width.")] = 128,
    ipc: Annotated[int, typer.Option(help="condense: synthetic images per class.")] = 10,
    variants: Annotated[
        str,
        typer.Option(
            help="condense: comma-separated variants (mtt, satm, satm+tuh, satm+tuh+tr; append +bf16 to any "
            "for bf16 forward passes, e.g. mtt+bf16)."
        ),
    ] = "mtt,satm,satm+tuh,satm+tuh+tr",
    allocators: Annotated[
        str, typer.Option(help="condense: allocators MTT is also timed under (comma-separated).")
    ] = "jemalloc,system",
    ceiling: Annotated[
        bool,
        typer.Option(
            help="condense: also time the minimal full-unroll MTT step (off where its memory does not fit, "
            "e.g. N=80 at width 128 needs ~26 GB)."
        ),
    ] = True,
    expert_images: Annotated[int, typer.Option(help="experts: training images per epoch.")] = 2000,
    expert_epochs: Annotated[int, typer.Option(help="experts: epochs.")] = 1,
    eval_epochs: Annotated[int, typer.Option(help="evaluate: epochs per run.")] = 300,
    eval_runs: Annotated[int, typer.Option(help="evaluate: runs.")] = 5,
    test_images: Annotated[int, typer.Option(help="experts/evaluate: test images scored.")] = 10000,
    timeout: Annotated[float, typer.Option(help="Seconds one measuring process may take.")] = 3600.0,
) -> None:
    """Expert training, evaluation runs and condensation's outer iteration, each beside its ceiling."""

    def body() -> None:
        from satm_cl.bench import BenchOptions, run_bench
        from satm_cl.bench.registry import parse_ints

        opts = BenchOptions(
            device=device,
            expert_images=expert_images,
            expert_epochs=expert_epochs,
            test_images=test_images,
            eval_epochs=eval_epochs,
            eval_runs=eval_runs,
            steps=parse_ints(steps, "--steps"),
            iterations=iterations,
            keep=keep,
            width=width,
            ipc=ipc,
            variants=tuple(split_list(variants)),
            allocators=tuple(split_list(allocators)),
            condense_ceiling=ceiling,
            timeout_s=timeout,
        )
        command = " ".join(["satm-cl", *sys.argv[1:]])
        run_bench(out, split_list(*suite), opts, echo=typer.echo, command=command)

    _guard(body)


@app.command()
def report(
    records: Annotated[
        list[Path],
        typer.Argument(
            help="records.jsonl files of `satm-cl evaluate`, or directories holding them (any suite, "
            "continual included)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("report"),
    artifact: Annotated[
        list[Path] | None, typer.Option(help="SyntheticSet dirs: image grids and condensation curves.")
    ] = None,
) -> None:
    """Turn records into Markdown/CSV/LaTeX tables and seaborn plots beside the paper's numbers."""

    def body() -> None:
        from satm_cl.report import build_report

        files = build_report(list(records), out, list(artifact or []))
        typer.echo(f"wrote {len(files)} files to {out}")

    _guard(body)


def _check_continual_options(
    suite: list[str], runs: int, archs: str | None, lr_protocol: str, baseline: str | None,
    cross_arch_epochs: int | None, corruptions: str | None, checkpoint_every: float,
) -> None:
    """`--suite continual` runs alone, and options of the other suites would be ignored: refuse them."""

    if set(suite) != {"continual"}:
        raise SatmError("--suite continual runs alone; run the other suites in a separate evaluate")
    ignored = [name for name, given in (("--runs", runs != 5), ("--archs", archs is not None),
                                        ("--lr-protocol", lr_protocol != "learned"),
                                        ("--baseline", baseline is not None),
                                        ("--cross-arch-epochs", cross_arch_epochs is not None),
                                        ("--corruptions", corruptions is not None),
                                        ("--checkpoint-every", checkpoint_every != 10.0)) if given]
    if ignored:
        raise SatmError(f"{', '.join(ignored)} do(es) not apply to --suite continual (class orders: "
                        "--orders; memories: --memories)")


def _echo_summary(
    path: Path, methods: set[str] | None, match: dict[str, Any], config: dict[str, Any] | None = None,
    fingerprint: str | None = None,
) -> None:
    """One line per measured group of this call's records (mean ± std over runs or class orders, n), so the
    command ends with its numbers, not only a path: records of `methods` (any when None) matching `match`,
    `config` values and, when given, the set `fingerprint`."""
    from satm_cl.records import read_records
    from satm_cl.report.tables import GROUP_KEYS, format_cell, summarise

    def mine(r: dict[str, Any]) -> bool:
        cfg = r.get("config") or {}
        return ((methods is None or r["method"] in methods)
                and all(r.get(k) == v for k, v in match.items())
                and all(cfg.get(k) == v for k, v in (config or {}).items())
                and (fingerprint is None or cfg.get("set_fingerprint") == fingerprint))

    for row in summarise([r for r in read_records(path) if mine(r)]).to_dict("records"):
        what = " ".join(f"{k}={row[k]}" if k in ("ipc", "steps") else str(row[k])
                        for k in GROUP_KEYS if k not in ("metric", "step", "epochs") and row[k] is not None)
        metric = "final average accuracy" if row["metric"] == "avg_accuracy" else "test accuracy"
        typer.echo(f"{what}: {metric} {format_cell(row['mean'], row['std'])} % (n={row['n']})")


# satm_cl.continual.protocols.STRATEGY_EPOCHS, for --help (importing it loads avalanche); a test checks it
STRATEGY_EPOCHS_DEFAULT = 10


def _set_method(path: Path) -> str:
    """The memory a `--synthetic` set stands for in a continual run: the method it was made with."""
    from satm_cl.synthetic import load_synthetic

    return str(load_synthetic(path).meta["method"])


@app.command()
def evaluate(
    synthetic: Annotated[
        Path | None,
        typer.Option(
            help="A SyntheticSet directory to evaluate. continual: it stands for its method's memory "
            "(e.g. a satm set for satm, which must be in --memories)."
        ),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Real-subset baseline instead: random, herding, kcenter, full.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset (for --baseline and --suite continual) [default: the set's; continual: "
                     "digits].")
    ] = None,
    ipc: Annotated[
        int | None, typer.Option(help="Images per class (for --baseline and --suite continual).")
    ] = None,
    suite: Annotated[
        list[str],
        typer.Option(help="in-domain, cross-arch, ood, all, or continual (alone); repeatable or "
                     "comma-separated."),
    ] = ["in-domain"],  # noqa: B006
    runs: Annotated[int, typer.Option(help="Seeded train-from-scratch runs per setting.")] = 5,
    archs: Annotated[str | None, typer.Option(help="Comma-separated architectures for cross-arch.")] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Training epochs of each model [default: the preset's eval_epochs]. continual: per fresh "
            "model per step for retrain; per experience for the strategy protocols, whose default is "
            f"{STRATEGY_EPOCHS_DEFAULT}."
        ),
    ] = None,
    cross_arch_epochs: Annotated[
        int | None, typer.Option(help="cross-arch: epochs for non-ConvNet archs [default: --epochs].")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Output directory (records.jsonl is appended; reruns resume).")
    ] = Path("runs/eval"),
    steps: Annotated[
        int,
        typer.Option(help="continual: number of class-incremental steps; must divide the dataset's classes."),
    ] = 5,
    memories: Annotated[
        str,
        typer.Option(
            help="continual: comma-separated memories: offline satm, mtt, herding (condensed or selected "
            "with all classes visible); stream satm-stream, mtt-stream (condensed per experience), "
            "satm-stream-mem, mtt-stream-mem (the same, conditioned on the memory held by then), "
            "satm-stream-mem-real1, mtt-stream-mem-real1 (the same, the first experience kept as its real "
            "starting images), random, reservoir, class_balanced, av_herding, gdumb."
        ),
    ] = "satm,mtt,random,herding,reservoir,gdumb",
    orders: Annotated[int, typer.Option(help="continual: number of class orders (seeds).")] = 3,
    protocol: Annotated[
        str,
        typer.Option(
            help="continual: retrain (the paper's: a fresh model trained on the memory alone each step); "
            "naive, lwf, ewc (Avalanche's strategy with a ReplayPlugin replaying the memory); er_ace, der "
            "(Avalanche's strategy with the memory as its buffer)."
        ),
    ] = "retrain",
    condense_config: Annotated[
        Path | None,
        typer.Option(
            help="continual: JSON of condense-config overrides of the preset: what satm/mtt(-stream) "
            "memories are condensed with, and the arch, DSA, LR, default epochs and whitening of every "
            "memory's run."
        ),
    ] = None,
    memory_dir: Annotated[
        Path | None,
        typer.Option(help="continual: where memories are found or made [default: OUT/memories]."),
    ] = None,
    reset_optimizer: Annotated[
        bool,
        typer.Option(help="continual strategy protocols: clear the optimizer's state (SGD momentum) at each "
                     "experience; Avalanche keeps it by default (docs/continual.md)."),
    ] = False,
    replay_batch: Annotated[
        int | None,
        typer.Option(help="continual strategy protocols (not retrain, not the gdumb memory): memory "
                     "images replayed per mini-batch. naive, lwf, ewc (ReplayPlugin) replay min(memory, N), "
                     "and a pass over a memory whose size N does not divide may end in a partial batch: an N "
                     "dividing every size (per-class memories hold IPC x classes seen so far) replays N at "
                     "every step for every memory. er_ace, der draw whole batches only, so N must be at most "
                     "IPC x classes per step. Default: naive, lwf, ewc 64 (the mini-batch), er_ace, der "
                     "min(32, slots / steps). docs/continual.md."),
    ] = None,
    lr_protocol: Annotated[
        str, typer.Option(help="Evaluation LR: learned (the set's α, MTT), tuned (per arch on val) or both.")
    ] = "learned",
    corruptions: Annotated[
        str | None,
        typer.Option(help="ood: corruptions: all, none or names [default: all on fashion-mnist, else none]"),
    ] = None,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            help="Minutes between saved states of a long training (a run or an LR candidate) in "
            "OUT/checkpoints; a rerun continues it there. 0: never."
        ),
    ] = 10.0,
    seed: int = 0,
    device: Device = "auto",
    cache_dir: CacheDir = None,
    data_dir: DataDir = None,
    executor: Executor = "local",
    jobs: Jobs = 1,
    ray_address: RayAddress = None,
    threads: Threads = 1,
    gpus_per_job: GpusPerJob = 0.0,
) -> None:
    """Measure a condensed set or a real-subset baseline: in-domain, cross-arch, ood, or continual."""
    continual = "continual" in split_list(*suite)
    # the continual suite condenses its satm/mtt memories with resume on: a plain rerun continues them
    resume = (f"{RERUN}: finished (memory, order) pairs are kept and a memory's condensation continues from "
              "its last checkpoint, no --resume needed") if continual else RERUN

    def body() -> None:
        grid = _exec_config(executor, jobs, ray_address, threads, gpus_per_job)
        suites = split_list(*suite)
        wanted = split_list(memories)
        if continual:
            from satm_cl.continual.runner import ContinualRequest, run_continual

            _check_continual_options(suites, runs, archs, lr_protocol, baseline, cross_arch_epochs,
                                     corruptions, checkpoint_every)
            syn_map = {} if synthetic is None else {_set_method(synthetic): synthetic}
            for name in syn_map:
                if name not in wanted:
                    raise SatmError(f"--synthetic is a {name} set, but {name} is not among --memories "
                                    f"({', '.join(wanted)}): add it, or it would not be used")
            path = run_continual(
                ContinualRequest(
                    dataset=dataset or "digits",
                    steps=steps,
                    ipc=1 if ipc is None else ipc,
                    memories=tuple(wanted),
                    orders=orders,
                    out=out,
                    device=device,
                    data_dir=data_dir,
                    cache_dir=cache_dir,
                    synthetic=syn_map or None,
                    protocol=protocol,
                    epochs=epochs,
                    seed=seed,
                    condense_overrides=_read_json(condense_config),
                    memory_dir=memory_dir,
                    reset_optimizer=reset_optimizer,
                    replay_batch=replay_batch,
                ),
                grid,
            )
        else:
            flags = (("--reset-optimizer", reset_optimizer or None), ("--replay-batch", replay_batch))
            for flag, given in flags:
                if given is not None:  # --replay-batch 0 too
                    raise SatmError(f"{flag} applies only to --suite continual's strategy protocols")
            from satm_cl.evaluate.runner import EvalRequest, evaluate_request

            done = evaluate_request(
                EvalRequest(
                    synthetic=synthetic,
                    baseline=baseline,
                    dataset=dataset,
                    ipc=ipc,
                    suites=tuple(suites),
                    runs=runs,
                    archs=None if archs is None else tuple(split_list(archs)),
                    epochs=epochs,
                    cross_arch_epochs=cross_arch_epochs,
                    out=out,
                    device=device,
                    data_dir=data_dir,
                    seed=seed,
                    lr_protocol=lr_protocol,
                    corruptions=corruptions,
                    cache_dir=cache_dir,
                    checkpoint_minutes=checkpoint_every,
                ),
                grid,
            )
            path = done.records
        if continual:
            _echo_summary(path, set(wanted), {"metric": "avg_accuracy", "step": steps})
        else:  # only this call's set: other sets' rows may share the records file
            _echo_summary(path, None, {"metric": "test_accuracy"}, {"base_seed": seed}, done.set_fingerprint)
        typer.echo(f"records: {path}")

    _guard(body, resume=resume)


@app.command()
def reproduce(
    table: Annotated[
        str | None, typer.Argument(help="Table name (see the list printed without it) or a table JSON file.")
    ] = None,
    scale: Annotated[
        str,
        typer.Option(
            help="cpu: small datasets that run on a CPU in minutes to hours (digits, mnist5k, "
            "fashion-mnist); paper: the paper's datasets and settings (CIFAR, Tiny ImageNet; needs "
            "--data-dir, meant for a GPU)."
        ),
    ] = "cpu",
    out: Annotated[
        Path | None, typer.Option(help="Output directory [default: results/reproduce/TABLE-SCALE].")
    ] = None,
    device: Device = "auto",
    data_dir: DataDir = None,
    cache_dir: CacheDir = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan (one line per step); run nothing.")] = False,
    executor: Executor = "local",
    jobs: Jobs = 1,
    ray_address: RayAddress = None,
    threads: Threads = 1,
    gpus_per_job: GpusPerJob = 0.0,
) -> None:
    """Run every job behind a table (condense, evaluate, continual, report) at cpu or paper scale; resumes.

    Without TABLE, list the tables (benchmarks/tables/*.json) with their titles."""

    def body() -> None:
        from satm_cl import reproduce as rep

        if table is None:
            for name, title in rep.describe_tables():
                typer.echo(f"{name:12s} {title}")
            typer.echo("run one with: satm-cl reproduce TABLE [--scale cpu|paper] [--dry-run]")
            return
        grid = _exec_config(executor, jobs, ray_address, threads, gpus_per_job, start=not dry_run)
        rep.run(
            table, scale, out, device, data_dir, cache_dir, dry_run=dry_run, echo=typer.echo, executor=grid
        )

    _guard(body)


def main() -> None:
    """Console-script entry point: switch to jemalloc first (see `satm_cl.allocator`), then run."""
    from satm_cl.allocator import maybe_reexec

    try:
        maybe_reexec()
    except SatmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    try:
        app()
    except SystemExit as done:  # click ends every run this way; a local Ray need not be waited for
        if done.code is None or isinstance(done.code, int):
            from satm_cl.execution import exit_fast

            exit_fast(done.code)
        raise


if __name__ == "__main__":
    main()
