"""`satm-cl evaluate`: validate a request, plan its suites, then train/test run by run into records.jsonl.

Everything checkable is checked before any training or writing (source, suites, architectures, the
artifact's dataset / image shape / classes against the evaluation data, a readable records file). Each run
is trained only if one of its records is missing (`RecordWriter.has` before training) and its records are
appended as soon as it finishes, so an interrupted evaluation resumes where it stopped and loses nothing;
a training that outlasts `checkpoint_minutes` (a ResNet on a whole train split: hours on a CPU) also saves
its state under `<out>/checkpoints/` and a rerun continues it mid-training (`satm_cl.train_state`).
One training per (architecture, seed) serves every suite that asks for that model: the in-domain, the
cross-arch ConvNet and the out-of-domain numbers of a set come from the same trained network. A rerun into
an `--out` holding records of the very runs it would make (same record keys) made with other epochs,
optimizer settings or images (`config.set_fingerprint`) is refused before any training: resuming would
count those runs as done.

Records: `stage` = suite, `metric` = `test_accuracy` (value in %), or `skipped` (value null, the reason in
`config.note`); `ipc` is null for the whole-train-split baseline `full`; out-of-domain rows on a shifted
dataset carry `test_dataset`. Every measured row carries `lr_protocol` (`learned` or `tuned`, see
`satm_cl.evaluate.lr_protocol`; a record without one counts as `learned`) and its training LR in `config.lr`;
`tuned` rows also carry `config.lr_selection` (grid, val accuracy per LR, choice). `--lr-protocol both` trains
every target under each protocol.

Cost (measured on digits, `--baseline random --ipc 1 --suite all --runs 3`, preset eval_epochs 300, one
torch thread, busy 2-core machine): 429 s, almost all in the cross-arch ResNet18 x3 / VGG11 / AlexNet runs
(~20-35 s each per seed). `cross_arch_epochs` (default: same as `epochs`, MTT's protocol) trains the models
other than the set's own ConvNet for fewer epochs: 100 cuts those runs to ~40 s per seed for all five.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from satm_cl.baselines import FULL_IPC, SELECTORS, create_baseline, preset_for
from satm_cl.data import DSA, check_data_dir, create_dataset
from satm_cl.data.corruptions import resolve_corruptions
from satm_cl.device import resolve_device
from satm_cl.errors import SatmError
from satm_cl.evaluate import lr_protocol
from satm_cl.evaluate.lr_protocol import (
    CANDIDATES_FILE,
    CandidateLog,
    expand_lr_protocols,
    lr_selection_config,
    recorded_choice,
    select_lr,
)
from satm_cl.evaluate.protocol import (
    EVAL_BATCH_SIZE,
    EVAL_DECAY_AT,
    EVAL_MOMENTUM,
    EVAL_WEIGHT_DECAY,
    arch_kwargs_for,
    build_model,
    evaluate_runs,
    run_groups,
    run_seed,
    set_arch,
    set_eval_defaults,
)
from satm_cl.evaluate.suites import ALL, SUITES, Note, SuiteContext, Target
from satm_cl.execution import ExecConfig, Job, JobResult, raise_failures, run_jobs
from satm_cl.fields import check_field_types
from satm_cl.io import cache_dir, check_out_dir
from satm_cl.models import list_models
from satm_cl.progress import progress_bar
from satm_cl.records import Record, RecordWriter, read_records, record_key
from satm_cl.seeding import derive_seed
from satm_cl.synthetic import META_FILE, SyntheticSet, load_synthetic
from satm_cl.train_state import TrainCheckpoint, discard

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
METRIC = "test_accuracy"
CHECKPOINT_DIR = "checkpoints"  # <out>/checkpoints/<hash>.safetensors: unfinished long trainings


@dataclass(frozen=True)
class EvalRequest:
    """What `run_evaluation` measures: an artifact (`synthetic`), or a real-subset `baseline` (random,
    herding, kcenter, full) of `dataset` at `ipc`; `suites` among in-domain, cross-arch, ood, all; `runs`
    seeded trainings each; `epochs` [the set's / preset's]; `lr_protocol` learned, tuned or both. Paths may
    be given as strings and `suites` / `archs` as one comma-separated string."""

    synthetic: Path | None = None
    baseline: str | None = None
    dataset: str | None = None
    ipc: int | None = None
    suites: tuple[str, ...] = ("in-domain",)
    runs: int = 5
    archs: tuple[str, ...] | None = None
    epochs: int | None = None  # None: the set's / preset's eval_epochs
    # epochs for cross-arch models other than the set's own ConvNet; None: same as `epochs` (MTT's protocol)
    cross_arch_epochs: int | None = None
    out: Path = Path("runs/eval")
    device: str = "auto"
    data_dir: Path | None = None
    seed: int = 0
    progress: bool = True
    lr_protocol: str = "learned"  # learned | tuned | both (see satm_cl.evaluate.lr_protocol)
    # ood corruptions: None = the dataset's default (all for fashion-mnist), "all", "none" or names
    corruptions: str | tuple[str, ...] | None = None
    corruption_seed: int = 0
    cache_dir: Path | None = None  # corrupted test sets are cached here [default: satm_cl.io.cache_dir()]
    # a training (run or LR candidate) saves its state this often under <out>/checkpoints and a rerun
    # continues it (`satm_cl.train_state`); 0: never. Short trainings finish before the first save.
    checkpoint_minutes: float = 10.0

    def __post_init__(self) -> None:
        for name in ("synthetic", "out", "data_dir", "cache_dir"):  # str paths, as a user types them
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Path(getattr(self, name)))
        if isinstance(self.corruptions, list):
            object.__setattr__(self, "corruptions", tuple(self.corruptions))
        for name in ("suites", "archs"):  # "in-domain" is one suite, not nine one-letter names
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, tuple(p.strip() for p in value.split(",") if p.strip()))
            elif isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        check_field_types(self, "evaluation request")


@dataclass(frozen=True)
class _Plan:
    syn: SyntheticSet
    dataset: str
    targets: list[Target]
    notes: list[Note]
    tests01: dict[str, tuple[torch.Tensor, torch.Tensor]]
    epochs: int
    dsa: str
    config: dict[str, Any]
    protocols: tuple[str, ...] = ("learned",)
    val01: tuple[torch.Tensor, torch.Tensor] | None = None  # the val split, for the `tuned` protocol


def expand_suites(suites: tuple[str, ...]) -> tuple[str, ...]:
    """Suite names with `all` expanded (order kept, duplicates dropped); unknown names are a SatmError."""
    valid = [*SUITES.names(), "all"]
    out: list[str] = []
    for name in suites:
        if name not in valid:
            if name == "continual":
                raise SatmError("the continual suite runs alone (`satm-cl evaluate --suite continual`; "
                                "satm_cl.continual.run_continual in Python), not with these suites")
            raise SatmError(f"unknown suite {name!r}; valid: {', '.join(valid)}, or continual (alone)")
        out += [s for s in (ALL if name == "all" else (name,)) if s not in out]
    if not out:
        raise SatmError(f"no suite given; valid: {', '.join(valid)}")
    return tuple(out)


def _check_request(req: EvalRequest) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    check_out_dir(req.out)
    check_data_dir(req.data_dir)
    if (req.synthetic is None) == (req.baseline is None):
        raise SatmError("give exactly one of --synthetic PATH or --baseline NAME (with --dataset and --ipc)")
    if req.baseline is not None:
        SELECTORS.get(req.baseline)
        if req.dataset is None:
            raise SatmError(f"--baseline {req.baseline} needs --dataset")
        if req.baseline != "full" and (req.ipc is None or req.ipc < 1):
            raise SatmError(f"--baseline {req.baseline} needs --ipc >= 1")
        if req.baseline == "full" and req.ipc is not None:
            raise SatmError("--baseline full trains on the whole train split: drop --ipc")
    if req.runs < 1:
        raise SatmError(f"--runs must be >= 1, got {req.runs}")
    if not req.checkpoint_minutes >= 0:
        raise SatmError(f"--checkpoint-every must be >= 0 minutes, got {req.checkpoint_minutes}")
    for flag, value in (("--epochs", req.epochs), ("--cross-arch-epochs", req.cross_arch_epochs)):
        if value is not None and value < 1:
            raise SatmError(f"{flag} must be >= 1, got {value}")
    suites = expand_suites(req.suites)
    expand_lr_protocols(req.lr_protocol)
    archs = None
    if req.archs is not None:
        unknown = [a for a in req.archs if a not in list_models()]
        if unknown:
            raise SatmError(f"unknown arch {unknown[0]!r}; valid: {', '.join(list_models())}")
        archs = tuple(dict.fromkeys(req.archs))
        if not archs:
            raise SatmError(f"--archs is empty; valid: {', '.join(list_models())}")
        if "cross-arch" not in suites:  # the other suites train the set's own arch only
            raise SatmError("--archs narrows the cross-arch suite; add --suite cross-arch or drop --archs")
    return suites, archs


def _check_artifact(syn: SyntheticSet, req: EvalRequest) -> str:
    meta = syn.meta
    dataset = str(meta["dataset"])
    if req.dataset is not None and req.dataset != dataset:
        raise SatmError(f"{req.synthetic} was condensed on {dataset}, not on --dataset {req.dataset}")
    if req.ipc is not None and req.ipc != meta["ipc"]:
        raise SatmError(f"{req.synthetic} has ipc {meta['ipc']}, not --ipc {req.ipc}")
    return dataset


def _check_against_data(
    syn: SyntheticSet, name: str, shape: tuple[int, ...], classes: tuple[str, ...]
) -> None:
    where = f"artifact ({syn.meta['dataset']}, {META_FILE})"
    if tuple(int(v) for v in syn.meta["image_shape"]) != tuple(shape) or tuple(syn.images.shape[1:]) != shape:
        raise SatmError(f"{where} images are {tuple(syn.images.shape[1:])} but {name} images are {shape}")
    if syn.num_classes != len(classes):
        raise SatmError(f"{where} has {syn.num_classes} classes but {name} has {len(classes)}")
    if list(syn.meta["class_names"]) != list(classes):
        raise SatmError(f"{where} class names differ from {name}'s")


def baseline_dir(out: Path, dataset: str, ipc: int | None, name: str, seed: int) -> Path:
    """Where a baseline artifact is kept: `<out>/baselines/<dataset>-ipc<k>-<name>` (`-seed<s>` if s != 0)."""
    stem = f"{dataset}-full" if name == "full" else f"{dataset}-ipc{ipc}-{name}"
    return Path(out) / "baselines" / (stem if seed == 0 else f"{stem}-seed{seed}")


def _baseline(req: EvalRequest, device: torch.device) -> tuple[SyntheticSet, Path]:
    """Reuse the saved baseline artifact when it is this request's (same selector, dataset, ipc, seed)."""
    assert req.baseline is not None and req.dataset is not None
    ipc = FULL_IPC if req.baseline == "full" else req.ipc
    where = baseline_dir(req.out, req.dataset, ipc, req.baseline, req.seed)
    if (where / META_FILE).is_file():
        try:
            syn = load_synthetic(where)
            same = (syn.meta["method"], syn.meta["dataset"], syn.meta["ipc"], syn.meta["seed"])
            if same == (req.baseline, req.dataset, ipc, req.seed):
                return syn, where
        except SatmError as exc:
            log.warning("rebuilding baseline %s: %s", where, exc)
    syn = create_baseline(req.baseline, req.dataset, ipc, seed=req.seed, device=device, data_dir=req.data_dir)
    if req.baseline != "full":  # the whole train split is the dataset itself; no copy is kept
        syn.save(where)
    return syn, where


def _plan(req: EvalRequest, device: torch.device) -> tuple[_Plan, RecordWriter]:
    suites, archs = _check_request(req)
    syn: SyntheticSet | None = None
    if req.synthetic is not None:
        syn = load_synthetic(req.synthetic)
        dataset = _check_artifact(syn, req)
    else:
        assert req.dataset is not None
        dataset = req.dataset
    splits = create_dataset(dataset, data_dir=req.data_dir, val_fraction=_val_fraction(syn, dataset))
    if syn is not None:
        _check_against_data(syn, dataset, splits.image_shape, splits.class_names)
    writer = RecordWriter(Path(req.out) / RECORDS_FILE)  # a malformed records file fails here, untouched
    if syn is None:
        syn, where = _baseline(req, device)
        source: dict[str, Any] = {
            "baseline": req.baseline,
            "settings": syn.meta["config"],
            "artifact": str(where) if req.baseline != "full" else None,
        }
    else:
        source = {"artifact": str(req.synthetic)}
    ctx = SuiteContext(
        syn,
        dataset,
        {"own": (splits.test.x, splits.test.y)},
        archs,
        req.data_dir,
        corruptions=resolve_corruptions(dataset, req.corruptions) if "ood" in suites else (),
        corruption_seed=req.corruption_seed,
        cache=cache_dir(req.cache_dir),
    )
    targets: list[Target] = []
    notes: list[Note] = []
    for name in suites:
        t, n = SUITES.get(name)(ctx)
        targets += t
        notes += n
    dsa, default_epochs = set_eval_defaults(syn)
    DSA(dsa)  # a bad strategy in the artifact is refused here, not recorded
    build_model(syn, set_arch(syn), seed=0)  # the set's own architecture must take it (others may refuse)
    epochs = req.epochs or default_epochs
    ipc = int(syn.meta["ipc"])
    config = {
        "epochs": epochs,
        "runs": req.runs,
        "lr": float(syn.lr),
        "dsa": dsa,
        "batch_size": EVAL_BATCH_SIZE,
        "momentum": EVAL_MOMENTUM,
        "weight_decay": EVAL_WEIGHT_DECAY,
        "decay_at": EVAL_DECAY_AT,
        "base_seed": req.seed,
        "preset": preset_for(dataset, ipc if ipc > 0 else None)[1],
        # which images these are: a set extended or replaced in place keeps its path, not its fingerprint
        "set_fingerprint": set_fingerprint(syn),
        # what the set was made with (its condensation or selection settings, overrides included), so a
        # record says how to re-make its set without the artifact at hand
        "set_config": syn.meta.get("config"),
        **source,
        "resampled": dict(ctx.extra),
    }
    protocols = expand_lr_protocols(req.lr_protocol)
    val01 = (splits.val.x, splits.val.y) if "tuned" in protocols else None
    plan = _Plan(syn, dataset, targets, notes, ctx.tests, epochs, dsa, config, protocols, val01)
    return plan, writer


# what makes a run's number: records of one (method, dataset, ipc, arch) in one records file that differ in
# any of these came from another training or another set, so a resume must not skip or mix them
SETTINGS_KEYS = ("epochs", "dsa", "batch_size", "momentum", "weight_decay", "decay_at", "baseline",
                 "set_fingerprint")


def _refuse_other_settings(writer: RecordWriter, plan: _Plan, req: EvalRequest) -> None:
    """One line, before any training, if `<out>` already holds records of runs this request would make
    (the same record keys: stage, method, dataset, ipc, arch, run seed, test set, LR protocol) made with other
    epochs, optimizer settings or images: resuming would count those runs as done. Records of other runs
    (other architectures, run seeds that do not overlap) may share an --out."""
    if not writer.path.is_file():
        return
    own = set_arch(plan.syn)
    wanted: dict[tuple[Any, ...], int] = {}  # record key -> the epochs its run trains
    for protocol in plan.protocols:
        for t in plan.targets:
            epochs = plan.epochs if t.arch == own or req.cross_arch_epochs is None else req.cross_arch_epochs
            for r in range(req.runs):
                key = _key(plan, t.stage, t.arch, run_seed(req.seed, r), METRIC, t.test_dataset, protocol)
                wanted[record_key(key)] = epochs
    for rec in read_records(writer.path):
        trains = wanted.get(record_key(rec))
        if trains is None:
            continue
        want, have = {**plan.config, "epochs": trains}, rec.get("config") or {}
        # older records lack the fingerprint: then their artifact path stands in for it
        keys = SETTINGS_KEYS if "set_fingerprint" in have else (*SETTINGS_KEYS[:-1], "artifact")
        diff = [k for k in keys if have.get(k) != want.get(k)]
        if diff:
            what = ", ".join(f"{k} {have.get(k)!r} there vs {want.get(k)!r} now" for k in diff)
            raise SatmError(f"{writer.path} already holds {rec['method']} {rec['arch']} seed {rec['seed']} "
                            f"results made with other settings ({what}); use another --out")


def _val_fraction(syn: SyntheticSet | None, dataset: str) -> float:
    """The val fraction the set's train split was carved with (so the `tuned` protocol's val split is
    disjoint from what the set was built from); a baseline's comes from its dataset's preset."""
    config = (syn.meta.get("config") or {}) if syn is not None else {}
    expert = config.get("expert")
    if isinstance(expert, dict) and "val_fraction" in expert:
        return float(expert["val_fraction"])
    if "val_fraction" in config:
        return float(config["val_fraction"])
    return float(preset_for(dataset, None)[0].expert.val_fraction)


def _key(
    plan: _Plan,
    stage: str,
    arch: str,
    seed: int,
    metric: str,
    test_dataset: str | None,
    lr_protocol: str | None = "learned",
) -> Record:
    ipc = int(plan.syn.meta["ipc"])
    key: Record = {
        "stage": stage,
        "method": str(plan.syn.meta["method"]),
        "dataset": plan.dataset,
        "ipc": None if ipc == FULL_IPC else ipc,
        "arch": arch,
        "seed": seed,
        "metric": metric,
    }
    if test_dataset is not None:
        key["test_dataset"] = test_dataset
    if lr_protocol is not None:
        key["lr_protocol"] = lr_protocol
    return key


@dataclass(frozen=True)
class EvalJob:
    """One training of the grid: `arch` at recorded seeds `seeds` (several when they train stacked, see
    `run_groups`), run i scored on every test set `targets[i]` needs.

    `req` has absolute paths (a worker may run elsewhere); `keys` and `config` are the records' own."""

    req: EvalRequest
    arch: str
    seeds: tuple[int, ...]
    epochs: int
    arch_kwargs: dict[str, Any]
    targets: tuple[tuple[Target, ...], ...]
    keys: tuple[tuple[Record, ...], ...]
    config: dict[str, Any]
    lr: float | None = None  # None: the set's learned LR
    checkpoint: TrainCheckpoint | None = None


_INPUTS: dict[EvalRequest, tuple[_Plan, dict[str, tuple[torch.Tensor, torch.Tensor]]]] = {}


def _inputs(req: EvalRequest) -> tuple[_Plan, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The plan and the test sets in the set's model-input space; kept for the last request, so a worker
    (or this process) running many jobs of one grid builds them once."""
    if req not in _INPUTS:
        device = resolve_device(req.device)
        plan, _ = _plan(req, device)
        _INPUTS.clear()
        _INPUTS[req] = _inputs_from(plan, device)
    return _INPUTS[req]


def eval_job(job: EvalJob) -> list[Record]:
    """Worker side: train the job's runs and return their records (the driver writes them on arrival)."""
    plan, tests = _inputs(job.req)
    needed = {t.test: tests[t.test] for targets in job.targets for t in targets}
    device = resolve_device(job.req.device)
    accs = evaluate_runs(
        plan.syn,
        job.arch,
        needed,
        job.epochs,
        job.seeds,
        device,
        job.arch_kwargs,
        plan.dsa,
        lr=job.lr,
        checkpoint=job.checkpoint,
    )
    return [
        {**key, "value": run[t.test], "config": job.config}
        for run, targets, keys in zip(accs, job.targets, job.keys, strict=True)
        for t, key in zip(targets, keys, strict=True)
    ]


def _absolute(req: EvalRequest) -> EvalRequest:
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else Path(p).resolve()

    return replace(
        req,
        synthetic=absolute(req.synthetic),
        out=Path(req.out).resolve(),
        data_dir=absolute(req.data_dir),
        cache_dir=absolute(req.cache_dir),
        progress=False,
    )


def _recorded_choices(writer: RecordWriter, plan: _Plan, base_seed: int) -> dict[tuple[str, int], Any]:
    """LR choices already made for this set ((arch, epochs) -> `config.lr_selection`), from tuned records."""
    if not writer.path.is_file():
        return {}
    method, ipc = str(plan.syn.meta["method"]), int(plan.syn.meta["ipc"])
    out: dict[tuple[str, int], Any] = {}
    for rec in read_records(writer.path):
        config = rec.get("config") or {}
        same = (rec.get("method"), rec.get("dataset"), rec.get("ipc")) == (
            method,
            plan.dataset,
            None if ipc == FULL_IPC else ipc,
        )
        if rec.get("lr_protocol") != "tuned" or not same or config.get("base_seed") != base_seed:
            continue
        choice = recorded_choice(config)
        if choice is not None:
            out[(str(rec["arch"]), int(config.get("epochs", -1)))] = choice
    return out


@dataclass(frozen=True)
class LrJob:
    """One candidate of the `tuned` protocol: `arch` trained once at `lr` (seed `seed`) on the set, scored on
    the val split; a grid job like `EvalJob`, so candidates train in parallel under any executor."""

    req: EvalRequest
    arch: str
    epochs: int
    arch_kwargs: dict[str, Any]
    lr: float
    seed: int
    checkpoint: TrainCheckpoint | None = None


def lr_job(job: LrJob) -> float:
    """Worker side: the candidate's val accuracy (%)."""
    plan, _ = _inputs(job.req)
    assert plan.val01 is not None
    device = resolve_device(job.req.device)
    prep = plan.syn.preprocessor().to(device)
    val = {"val": (prep.transform(plan.val01[0].to(device)), plan.val01[1].to(device))}
    runs = evaluate_runs(
        plan.syn,
        job.arch,
        val,
        job.epochs,
        [job.seed],
        device,
        job.arch_kwargs,
        plan.dsa,
        lr=job.lr,
        checkpoint=job.checkpoint,
    )
    return runs[0]["val"]


def set_fingerprint(syn: SyntheticSet) -> str:
    """A short SHA-256 of a set's images, labels and learned LR (which set a tuned candidate trained on)."""
    h = hashlib.sha256()
    for t in (syn.images, syn.labels):
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    h.update(struct.pack("<f", float(syn.lr)))  # as artifacts store it (a reloaded 0.05 is float32's 0.05)
    return h.hexdigest()[:16]


def training_checkpoint(req: EvalRequest, ident: dict[str, Any]) -> TrainCheckpoint | None:
    """Where the training `ident` (JSON-able: what makes it this training) keeps its state, or None when
    `req.checkpoint_minutes` is 0."""
    if req.checkpoint_minutes <= 0:
        return None
    text = json.dumps(ident, sort_keys=True)
    name = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(req.out) / CHECKPOINT_DIR / f"{name}.safetensors"
    return TrainCheckpoint(path, text, every_s=60.0 * req.checkpoint_minutes)


def _tune_lrs(
    todo: dict[tuple[str, int], dict[str, Any]],
    plan: _Plan,
    req: EvalRequest,
    worker_req: EvalRequest,
    executor: ExecConfig,
    fingerprint: str,
) -> dict[tuple[str, int], dict[str, Any]]:
    """For each (arch, epochs) in `todo` (-> its arch kwargs), train every LR_GRID candidate as one grid of
    `LrJob`s and pick the LR with the best val accuracy (`select_lr`); the `lr_selection` of each.
    Candidates already in `<out>/lr_candidates.jsonl` (an interrupted earlier run) are not trained again."""
    grid = tuple(float(lr) for lr in lr_protocol.LR_GRID)  # read at call time (tests may cut the grid)
    base_seed = req.seed
    seed = derive_seed(base_seed, "lr-select")
    log_file = CandidateLog(Path(worker_req.out) / CANDIDATES_FILE)
    ipc = int(plan.syn.meta["ipc"])
    ident = {
        "method": str(plan.syn.meta["method"]),
        "dataset": plan.dataset,
        "ipc": None if ipc == FULL_IPC else ipc,
        "set": fingerprint,
        "base_seed": base_seed,
        "seed": seed,
    }

    def key(arch: str, epochs: int, kwargs: dict[str, Any], lr: float) -> dict[str, Any]:
        return {**ident, "arch": arch, "arch_kwargs": kwargs, "epochs": epochs, "lr": lr}

    scores: dict[tuple[str, int, float], float] = {}
    jobs = []
    for (arch, epochs), kwargs in todo.items():
        for lr in grid:
            done = log_file.get(key(arch, epochs, kwargs, lr))
            if done is not None:
                scores[(arch, epochs, lr)] = done
            else:
                ck_ident = {"job": "lr-candidate", "dsa": plan.dsa, **key(arch, epochs, kwargs, lr)}
                ck = training_checkpoint(worker_req, ck_ident)
                spec = LrJob(worker_req, arch, epochs, kwargs, lr, seed, ck)
                jobs.append(Job(f"tune {arch} epochs={epochs} lr={lr:g}", lr_job, spec))
    if scores:
        log.info("reusing %d finished LR candidate(s) from %s", len(scores), log_file.path)
    bar = progress_bar(total=len(jobs), desc="tune evaluation LRs", disable=not req.progress or not jobs)

    def commit(result: JobResult) -> None:
        bar.update()
        if result.ok:
            spec = result.job.spec
            scores[(spec.arch, spec.epochs, spec.lr)] = float(result.value)
            log_file.add(key(spec.arch, spec.epochs, spec.arch_kwargs, spec.lr), float(result.value))
            discard(spec.checkpoint)  # only once the candidate is logged

    try:
        results = run_jobs(jobs, executor, commit)
    finally:
        bar.close()
    raise_failures(results)
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for arch, epochs in todo:
        mine = {float(lr): scores[(arch, epochs, float(lr))] for lr in grid}
        chosen, by_lr = select_lr(mine.__getitem__, grid)
        log.info("%s: tuned LR %g (val accuracy per LR %s)", arch, chosen, by_lr)
        out[(arch, epochs)] = lr_selection_config(chosen, by_lr, seed, grid)
    return out


_Pending = tuple[str, str, list[Target], dict[str, Any], int]  # protocol, arch, targets, arch kwargs, epochs


@dataclass(frozen=True)
class Evaluated:
    """What one evaluation measured: its records file and the `set_fingerprint` of the set it evaluated
    (the key to this call's rows in a records file other sets share)."""

    records: Path
    set_fingerprint: str


def run_evaluation(req: EvalRequest, executor: ExecConfig | None = None) -> Path:
    """Run the requested suites for a synthetic set or a baseline and return `<out>/records.jsonl`.

    Rows already in the records file are skipped before any training, so a rerun only does what is missing.
    `tuned` LRs are chosen first (every candidate LR one job); then each missing (architecture, run group) is
    one job of a grid run by `executor` (default: here, in turn); the records are written as each job
    finishes and put in grid order at the end, whatever the executor; failed jobs are raised at the end.
    """
    return evaluate_request(req, executor).records


def evaluate_request(req: EvalRequest, executor: ExecConfig | None = None) -> Evaluated:
    """`run_evaluation`, also saying which set was evaluated (its fingerprint), e.g. to summarise this
    call's rows of a records file shared with other sets."""
    device = resolve_device(req.device)
    plan, writer = _plan(req, device)
    _refuse_other_settings(writer, plan, req)
    executor = executor or ExecConfig()
    for note in plan.notes:
        log.warning("%s/%s skipped: %s", note.stage, note.arch, note.text)  # else a silent exit 0
        key = _key(plan, note.stage, note.arch, req.seed, "skipped", note.test_dataset, None)
        writer.write([{**key, "value": float("nan"), "config": {**plan.config, "note": note.text}}])
    worker_req = _absolute(req)
    method = plan.syn.meta["method"]
    choices = _recorded_choices(writer, plan, req.seed) if "tuned" in plan.protocols else {}
    archs = list(dict.fromkeys(t.arch for t in plan.targets))
    pending: list[_Pending] = []
    canonical: dict[tuple[Any, ...], tuple[int, ...]] = {}  # every wanted row's place in the grid's order
    for protocol, arch in ((p, a) for p in plan.protocols for a in archs):
        wanted = [t for t in plan.targets if t.arch == arch]
        own = arch == set_arch(plan.syn)
        epochs = plan.epochs if own or req.cross_arch_epochs is None else req.cross_arch_epochs
        wanted_keys = [
            _key(plan, t.stage, arch, run_seed(req.seed, r), METRIC, t.test_dataset, protocol)
            for r in range(req.runs)
            for t in wanted
        ]
        canonical.update((record_key(k), (len(canonical),)) for k in wanted_keys)
        if not all(writer.has(**key) for key in wanted_keys):
            pending.append((protocol, arch, wanted, arch_kwargs_for(plan.syn, arch), epochs))
    _INPUTS.clear()
    if pending:
        _INPUTS[worker_req] = _inputs_from(plan, device)  # in-process jobs reuse the driver's plan
    try:
        fingerprint = set_fingerprint(plan.syn) if pending else ""
        tune = {(a, e): kw for p, a, _, kw, e in pending if p == "tuned" and (a, e) not in choices}
        if tune:  # once per (arch, epochs), before any run is dispatched
            choices.update(_tune_lrs(tune, plan, req, worker_req, executor, fingerprint))
        jobs = [
            job
            for item in pending
            for job in _run_jobs(plan, req, worker_req, writer, item, choices, executor, device, fingerprint)
        ]
        bar = progress_bar(total=len(jobs), desc=f"evaluate {method} {plan.dataset}",
                           disable=not req.progress)

        def commit(result: JobResult) -> None:
            bar.update()
            if result.ok:
                writer.write(result.value)
                discard(result.job.spec.checkpoint)  # only once its records are written

        try:
            results = run_jobs(jobs, executor, commit)
        finally:
            bar.close()
            # committed as they finished: back to the grid's order (also when a killed run left them so)
            writer.reorder(lambda rec: canonical.get(record_key(rec)))
    finally:
        _INPUTS.clear()
    raise_failures(results)
    return Evaluated(writer.path, str(plan.config["set_fingerprint"]))


def _run_jobs(
    plan: _Plan,
    req: EvalRequest,
    worker_req: EvalRequest,
    writer: RecordWriter,
    item: _Pending,
    choices: dict[tuple[str, int], Any],
    executor: ExecConfig,
    device: torch.device,
    fingerprint: str,
) -> list[Job]:
    """The evaluation jobs of one (protocol, arch): its missing runs, grouped as they train (`run_groups`)."""
    protocol, arch, wanted, kwargs, epochs = item
    lr_config: dict[str, Any] = {"lr": float(plan.syn.lr)}
    if protocol == "tuned":
        lr_config = {"lr": choices[(arch, epochs)]["chosen"], "lr_selection": choices[(arch, epochs)]}
    lr = float(lr_config["lr"])
    config = {**plan.config, "epochs": epochs, "arch_kwargs": kwargs, **lr_config, **executor.describe()}
    missing: dict[int, list[tuple[Target, Record]]] = {}
    for r in range(req.runs):
        seed = run_seed(req.seed, r)
        todo = [(t, _key(plan, t.stage, arch, seed, METRIC, t.test_dataset, protocol)) for t in wanted]
        todo = [(t, key) for t, key in todo if not writer.has(**key)]
        if todo:
            missing[seed] = todo
    jobs = []
    for group in run_groups(plan.syn, arch, list(missing), device, kwargs):
        targets = tuple(tuple(t for t, _ in missing[seed]) for seed in group)
        keys = tuple(tuple(key for _, key in missing[seed]) for seed in group)
        ident = {"job": "runs", "set": fingerprint, "dsa": plan.dsa, "epochs": epochs, "lr": lr, "keys": keys}
        ck = training_checkpoint(worker_req, {**ident, "arch_kwargs": kwargs})
        spec = EvalJob(worker_req, arch, tuple(group), epochs, kwargs, targets, keys, config, lr, ck)
        seeds = ",".join(map(str, group))
        tuned = "" if protocol == "learned" else f" lr={protocol}"
        label = f"evaluate {plan.syn.meta['method']} {plan.dataset} arch={arch}{tuned} seed={seeds}"
        jobs.append(Job(label, eval_job, spec))
    return jobs


def _inputs_from(
    plan: _Plan, device: torch.device
) -> tuple[_Plan, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    prep = plan.syn.preprocessor().to(device)
    return plan, {n: (prep.transform(x.to(device)), y.to(device)) for n, (x, y) in plan.tests01.items()}
