"""The continual suite: every memory x class order through one protocol, written as tidy records.

Memories: `satm`, `mtt` (condensed artifacts; condensed into `<out>/memories/` when not given), `random`,
`herding` (our real subsets from `satm_cl.baselines`), and Avalanche's `reservoir`, `class_balanced`,
`av_herding`, `gdumb`, all at the same budget of ipc x classes slots; `satm-stream` and `mtt-stream` condense
each experience's real data on arrival (experts trained on that experience only); `satm-stream-mem` and
`mtt-stream-mem` do the same conditioned on the memory held by then (experts train on the experience plus
the memory's images, the student on the new images plus the memory's: `satm_cl.replay_memory`);
`satm-stream-mem-real1` / `mtt-stream-mem-real1` keep the first experience's starting (real) images instead
of condensing it, so every later experience is condensed against real images. Every record's config says
`memory_mode`: `offline` (images shaped by data of classes not yet seen: the whole-dataset condensed sets,
herding on features of a net trained on all classes) or `stream` (built only from experiences seen so far).
Under a whitening (ZCA) preset, stream-mode memories train in a ZCA fitted on the first experience's train
images only, then frozen (`zca_fit: first experience` in their records); a whitening fitted on the whole train
split would carry the later classes' statistics.
A rerun skips finished (memory, order) pairs; records produced with different settings in the same `out` are
an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from satm_cl.config import CondenseConfig
from satm_cl.continual.presets import PRESETS, condense_config
from satm_cl.data import DatasetSplits, Preprocessor, check_data_dir, create_dataset
from satm_cl.device import resolve_device
from satm_cl.errors import SatmError
from satm_cl.evaluate.runner import set_fingerprint
from satm_cl.execution import ExecConfig, Job, JobResult, raise_failures, run_jobs
from satm_cl.fields import check_field_types
from satm_cl.io import check_out_dir, locked
from satm_cl.progress import progress_bar
from satm_cl.records import Record, RecordWriter, read_records
from satm_cl.replay_memory import MemoryImages
from satm_cl.synthetic import META_FILE, SyntheticSet, load_synthetic

if TYPE_CHECKING:
    from satm_cl.continual.buffers import CondenseFn
    from satm_cl.continual.protocols import ContinualResult
    from satm_cl.continual.scenarios import Scenario

STAGE = "continual"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamMemory:
    """How a stream memory builds each experience's images on arrival."""

    method: str  # the condensation method: satm or mtt
    conditioned: bool = False  # experts and student also train on the memory held by then
    real_first: bool = False  # the first experience keeps its starting (real) images: nothing is condensed

    def __post_init__(self) -> None:
        if self.real_first and not self.conditioned:
            raise SatmError("a stream memory keeps its first experience real only when conditioned on it")


# Condensed on arrival, one experience at a time.
STREAM_MEMORIES = {
    "satm-stream": StreamMemory("satm"),
    "mtt-stream": StreamMemory("mtt"),
    "satm-stream-mem": StreamMemory("satm", conditioned=True),
    "mtt-stream-mem": StreamMemory("mtt", conditioned=True),
    "satm-stream-mem-real1": StreamMemory("satm", conditioned=True, real_first=True),
    "mtt-stream-mem-real1": StreamMemory("mtt", conditioned=True, real_first=True),
}
# Mirrors protocols.MEMORIES / PROTOCOLS (kept here so validating a request does not import avalanche).
MEMORY_NAMES = ("satm", "mtt", "random", "herding", "reservoir", "class_balanced", "av_herding", "gdumb",
                *STREAM_MEMORIES)
PROTOCOL_NAMES = ("retrain", "naive", "lwf", "ewc", "er_ace", "der")
OWN_BUFFER_PROTOCOLS = ("er_ace", "der")  # = protocols.OWN_BUFFER_STRATEGIES: fixed replay batches, drop_last
# offline: a memory's images depend on data of classes not yet seen; stream: only on experiences seen so far.
MEMORY_MODES = {"satm": "offline", "mtt": "offline", "herding": "offline", "random": "stream",
                "reservoir": "stream", "class_balanced": "stream", "av_herding": "stream", "gdumb": "stream",
                **{name: "stream" for name in STREAM_MEMORIES}}


@dataclass(frozen=True)
class ContinualRequest:
    """One continual comparison: memories x class orders on `dataset` in `steps` steps at `ipc`."""

    dataset: str = "digits"
    steps: int = 5
    ipc: int = 1
    memories: tuple[str, ...] = ("satm", "mtt", "random", "herding", "reservoir", "gdumb")
    orders: int = 3
    out: Path = Path("runs/continual")
    device: str = "auto"
    data_dir: Path | None = None
    cache_dir: Path | None = None
    synthetic: dict[str, Path] | None = field(default=None, hash=False)
    protocol: str = "retrain"
    epochs: int | None = None
    seed: int = 0
    progress: bool = True
    # condense-config overrides of the run's preset: what satm/mtt(-stream) memories are condensed with, and
    # the arch, DSA, LR, default epochs and whitening every memory trains with
    condense_overrides: dict[str, Any] | None = field(default=None, hash=False)
    memory_dir: Path | None = None  # where memories are found or made; default <out>/memories
    # strategy protocols: clear the optimizer's state (SGD momentum) at each experience; Avalanche keeps it
    reset_optimizer: bool = False
    # strategy protocols: replayed images per mini-batch (None: each strategy's default, strategy_protocol)
    replay_batch: int | None = None

    def __post_init__(self) -> None:
        for name in ("out", "data_dir", "cache_dir", "memory_dir"):  # str paths, as a user types them
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Path(getattr(self, name)))
        if isinstance(self.memories, str):  # "satm,herding" is two memories, not 11 one-letter names
            names = tuple(p.strip() for p in self.memories.split(",") if p.strip())
            object.__setattr__(self, "memories", names)
        elif isinstance(self.memories, list):
            object.__setattr__(self, "memories", tuple(self.memories))
        check_field_types(self, "continual request")


def preset_request(name: str, **overrides: Any) -> ContinualRequest:
    """A request from a continual preset (see `presets.PRESETS`), with any field overridden."""
    if name not in PRESETS:
        raise SatmError(f"unknown continual preset {name!r}; valid: {', '.join(PRESETS)}")
    return ContinualRequest(**{**PRESETS[name], **overrides})


def validate(req: ContinualRequest) -> None:
    """One-line SatmErrors for bad names or counts, before any work."""
    for memory in req.memories:
        if memory not in MEMORY_NAMES:
            raise SatmError(f"unknown memory {memory!r}; valid: {', '.join(MEMORY_NAMES)}")
    if req.protocol not in PROTOCOL_NAMES:
        raise SatmError(f"unknown protocol {req.protocol!r}; valid: {', '.join(PROTOCOL_NAMES)}")
    if len(set(req.memories)) != len(req.memories) or not req.memories:
        raise SatmError("memories must be a non-empty list of distinct names")
    for name, value in (("steps", req.steps), ("ipc", req.ipc), ("orders", req.orders)):
        if value < 1:
            raise SatmError(f"{name} must be >= 1, got {value}")
    if req.epochs is not None and req.epochs < 1:
        raise SatmError(f"epochs must be >= 1, got {req.epochs}")
    if req.reset_optimizer and req.protocol == "retrain":
        raise SatmError("--reset-optimizer applies to the strategy protocols (naive, lwf, ewc, er_ace, der): "
                        "retrain trains a fresh model at each step")
    if req.replay_batch is not None:
        if req.replay_batch < 1:
            raise SatmError(f"--replay-batch must be >= 1, got {req.replay_batch}")
        if req.protocol == "retrain":
            raise SatmError("--replay-batch applies to the strategy protocols (naive, lwf, ewc, er_ace, "
                            "der): retrain trains on the memory alone")
        if "gdumb" in req.memories:
            raise SatmError("--replay-batch does not apply to gdumb (it trains on its memory alone, nothing "
                            "is replayed): run gdumb in another --out without it")
    if set(MEMORY_NAMES) != set(MEMORY_MODES):
        raise AssertionError("every memory needs a memory_mode")
    unknown = sorted(set(req.synthetic or {}) - {"satm", "mtt", "random", "herding"})
    if unknown:
        raise SatmError(f"synthetic artifacts are for satm, mtt, random or herding, not {unknown[0]!r}")


def check_classes_per_step(req: ContinualRequest, num_classes: int) -> None:
    """Refuse, before any work, a plain stream memory with one class per experience: experts trained on a
    single class have nothing to learn, so there is no trajectory to match."""
    if num_classes // req.steps >= 2:
        return
    for memory in req.memories:
        spec = STREAM_MEMORIES.get(memory)
        if spec is not None and not spec.conditioned:
            raise SatmError(f"{memory} needs at least 2 classes per experience ({req.dataset} in {req.steps} "
                            f"steps gives 1): experts trained on one class have nothing to learn; use fewer "
                            f"steps, or the memory-conditioned {spec.method}-stream-mem, whose experts also "
                            "learn the memory's classes")


def check_replay_batch(req: ContinualRequest, num_classes: int) -> None:
    """Before any work: refuse a `replay_batch` that ER-ACE / DER could never draw from the smallest memory
    they meet (they skip replay until the memory holds a full batch), and warn when it does not divide every
    memory size a ReplayPlugin strategy meets (a pass over such a memory may end in a partial batch)."""
    n = req.replay_batch
    if n is None:
        return
    per_step = req.ipc * max(1, num_classes // req.steps)  # a per-class memory after the first experience
    if req.protocol in OWN_BUFFER_PROTOCOLS:
        if n > per_step:
            raise SatmError(f"--replay-batch {n} is more than the {per_step} images a per-class memory "
                            f"holds after the first experience (IPC {req.ipc} x {num_classes // req.steps} "
                            f"classes): {req.protocol} replays only once its memory holds a full batch; "
                            f"use at most {per_step}")
        return
    sizes = sorted({per_step * k for k in range(1, req.steps)} | {req.ipc * num_classes})
    uneven = [s for s in sizes if s % n]
    if uneven:
        log.warning("--replay-batch %d does not divide the memory sizes %s: a memory of those sizes may "
                    "replay fewer than %d images in some steps (a pass over it ends in a partial batch)",
                    n, ", ".join(map(str, uneven)), n)


def run_continual(req: ContinualRequest, executor: ExecConfig | None = None) -> Path:
    """Run every (memory, class order) not yet recorded; return `<out>/records.jsonl`.

    Set-backed memories are found or made here first; then each missing (memory, order) is one job of
    a grid run by `executor` (default: here, in turn), its records written as it finishes and put in grid
    order (memory, then class order) at the end."""
    validate(req)
    check_out_dir(req.out)
    if req.memory_dir is not None:
        check_out_dir(req.memory_dir, "--memory-dir")
    check_data_dir(req.data_dir)
    from satm_cl.continual import protocols
    from satm_cl.report.checks import unlearned_experiences

    executor = executor or ExecConfig()
    ctx, configs = _setup(req)
    check_classes_per_step(req, ctx.splits.num_classes)
    check_replay_batch(req, ctx.splits.num_classes)
    path = Path(req.out) / "records.jsonl"
    writer = RecordWriter(path)
    _check_existing(path, req, ctx.cfg.expert.arch, configs)

    worker_req = _absolute(req)
    jobs: list[Job] = []
    for memory in req.memories:
        key = {"stage": STAGE, "method": memory, "dataset": req.dataset, "ipc": req.ipc,
               "arch": ctx.cfg.expert.arch, "metric": "forgetting", "step": req.steps}
        todo = [s for s in configs if not writer.has(**key, seed=s)]
        if not todo:
            continue
        if memory in protocols.SET_MEMORIES:
            # condense or select once, here, before any worker needs it; an offline set's missing experts
            # train on the grid's workers (the cores are free until the grid starts)
            spread = executor.jobs > 1 or executor.executor != "local"
            source = ctx.source(memory, executor if spread else None)
            _check_set(path, req, memory, set_fingerprint(source))
        jobs += [Job(f"continual {memory} {req.dataset} order {s}", continual_job,
                     ContinualJob(worker_req, memory, s, req.progress)) for s in todo]
    _CONTEXTS.clear()
    _CONTEXTS[worker_req] = (ctx, configs)  # in-process jobs reuse this context
    sizes: dict[str, int] = {}
    # one tick per (memory, class order) as the grid commits it: on workers a stream memory's job can run for
    # hours with nothing else on screen
    bar = progress_bar(total=len(jobs), desc=f"continual {req.dataset} ipc{req.ipc} {req.protocol}",
               disable=not req.progress or not jobs)

    def commit(result: JobResult) -> None:
        bar.update()
        if not result.ok:
            return
        memory, (mem_size, records) = result.job.spec.memory, result.value
        sizes[memory] = mem_size
        if len(set(sizes.values())) != 1 or mem_size != ctx.mem_size:
            raise AssertionError(f"unequal memory sizes across compared buffers: {sizes}")
        writer.write(records)
        for line in unlearned_experiences(records):
            log.warning("%s: not learned by the step's end, so its backward transfer and forgetting mislead",
                        line)

    grid: dict[tuple[Any, Any], int] = {
        (memory, s): i for i, (memory, s) in enumerate((m, s) for m in req.memories for s in configs)}

    def rank(rec: Record) -> tuple[int, ...] | None:
        place = grid.get((rec.get("method"), rec.get("seed"))) if rec.get("stage") == STAGE else None
        return None if place is None else (place,)

    try:
        results = run_jobs(jobs, executor, commit)
    finally:
        _CONTEXTS.clear()
        bar.close()
        writer.reorder(rank)  # jobs committed as they finished: back to (memory, order) order
    raise_failures(results)
    return path


def _setup(req: ContinualRequest) -> tuple[_Context, dict[int, dict[str, Any]]]:
    """What every (memory, order) job of `req` shares, and the records' config per class order."""
    from satm_cl.continual import protocols
    from satm_cl.continual.scenarios import draw_class_order

    device = resolve_device(req.device)
    # the run's preset, with the request's condensation overrides: its arch, DSA, LR, epochs and whitening
    # apply to every memory alike, so a pinned config (e.g. an older preset) reproduces the whole run
    cfg = condense_config(req.dataset, req.ipc, "satm", req.condense_overrides)
    splits = create_dataset(req.dataset, data_dir=req.data_dir, val_fraction=cfg.expert.val_fraction)
    if splits.num_classes % req.steps:
        raise SatmError(f"{req.dataset} has {splits.num_classes} classes, which do not split evenly into "
                        f"{req.steps} steps")
    mem_size = req.ipc * splits.num_classes
    epochs = req.epochs or (cfg.eval_epochs if req.protocol == "retrain" else protocols.STRATEGY_EPOCHS)
    orders = [req.seed + k for k in range(req.orders)]
    configs = {s: _config(req, splits, draw_class_order(splits.num_classes, s), mem_size, epochs)
               for s in orders}
    return _Context(req, cfg, splits, device, mem_size, epochs), configs


@dataclass(frozen=True)
class ContinualJob:
    """One (memory, class order) of the grid; `req` has absolute paths (a worker may run elsewhere)."""

    req: ContinualRequest
    memory: str
    order_seed: int
    progress: bool = False


_CONTEXTS: dict[ContinualRequest, tuple[_Context, dict[int, dict[str, Any]]]] = {}


def continual_job(job: ContinualJob) -> tuple[int, list[Record]]:
    """Worker side: run one memory on one class order; return its memory size and records."""
    from satm_cl.continual import protocols

    if job.req not in _CONTEXTS:  # a worker builds the shared context once per request
        _CONTEXTS.clear()
        _CONTEXTS[job.req] = _setup(job.req)
    ctx, configs = _CONTEXTS[job.req]
    source = ctx.source(job.memory) if job.memory in protocols.SET_MEMORIES else None
    label = f"{job.memory} order {job.order_seed}" if job.progress else None
    result = ctx.run(job.memory, source, job.order_seed, label)
    seed, arch = job.order_seed, ctx.cfg.expert.arch
    config = dict(configs[seed])
    if source is not None:  # which set: two artifacts of one method never pool unnoticed
        config["set_fingerprint"] = set_fingerprint(source)
    return result.mem_size, _records(job.req, job.memory, arch, seed, result, config)


def _absolute(req: ContinualRequest) -> ContinualRequest:
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else Path(p).resolve()

    synthetic = None if req.synthetic is None else {k: Path(v).resolve() for k, v in req.synthetic.items()}
    return replace(req, out=Path(req.out).resolve(), data_dir=absolute(req.data_dir),
                   cache_dir=absolute(req.cache_dir), memory_dir=absolute(req.memory_dir),
                   synthetic=synthetic)


@dataclass
class _Context:
    """What every (memory, order) run of one request shares: config, data, scenarios per model-input space."""

    req: ContinualRequest
    cfg: CondenseConfig
    splits: DatasetSplits
    device: torch.device
    mem_size: int
    epochs: int
    _scenarios: dict[tuple[Any, ...], Scenario] = field(default_factory=dict)

    def scenario(self, prep: Preprocessor, order_seed: int) -> Scenario:
        from satm_cl.continual.scenarios import make_scenario

        matrix = prep.zca_matrix
        whitening = None if matrix is None else hashlib.sha256(matrix.numpy().tobytes()).digest()
        space = (whitening, tuple(prep.mean.tolist()), tuple(prep.std.tolist()))
        key = (*space, order_seed)
        if key not in self._scenarios:
            self._scenarios = {k: v for k, v in self._scenarios.items() if k[:-1] == space}  # bound memory
            self._scenarios[key] = make_scenario(self.splits, self.req.steps, order_seed, prep)
        return self._scenarios[key]

    @property
    def memory_root(self) -> Path:
        """Where memories are looked for and written (shared by several runs with `memory_dir`)."""
        return Path(self.req.memory_dir) if self.req.memory_dir else Path(self.req.out) / "memories"

    def reference_prep(self) -> Preprocessor:
        """The model-input space of the preset (for memories of raw real samples)."""
        s = self.splits
        return Preprocessor.fit(s.train.x, s.mean, s.std, zca=self.cfg.expert.zca)

    def stream_prep(self, order_seed: int) -> Preprocessor:
        """The whitened space of stream-mode memories: ZCA fitted on the first experience's train images."""
        from satm_cl.experts.train import fit_preprocessor, restrict_classes

        first = first_experience(self.splits.num_classes, self.req.steps, order_seed)
        return fit_preprocessor(self.splits, True, restrict_classes(self.splits, first).train.x)

    def space(
        self, memory: str, source: SyntheticSet | None, order_seed: int
    ) -> tuple[Preprocessor, SyntheticSet | None]:
        """The model-input space a run trains in, and its source mapped into that space (see module doc)."""
        if stream_whitened(memory, self.req):
            prep = self.stream_prep(order_seed)
            if source is not None:  # a real subset: back to pixels, then into the stream's whitening
                source = replace(source, images=prep.transform(source.pixels()), zca_state=prep.tensors(),
                                 meta={**source.meta, "zca": True})
            return prep, source
        return (self.reference_prep() if source is None else source.preprocessor()), source

    def make_model(self, seed: int) -> torch.nn.Module:
        from satm_cl.models import create_model

        c, h, w = self.splits.image_shape
        exp = self.cfg.expert
        n = self.splits.num_classes
        return create_model(exp.arch, c, n, (h, w), seed=seed % 2**31, **exp.arch_kwargs)

    def source(self, memory: str, executor: ExecConfig | None = None) -> SyntheticSet:
        """The SyntheticSet behind a set-backed memory: given, found in `<out>/memories`, or made now
        (`executor`: where a condensed set's missing experts train; default here, one after another)."""
        req = self.req
        given = (req.synthetic or {}).get(memory)
        if given is not None:
            found = load_synthetic(given)
            if found.meta.get("method") != memory:  # its records would carry the wrong method's name
                raise SatmError(f"{given} is a {found.meta.get('method')} set, not a {memory} one")
            return self._check(found, memory, str(given))
        if memory in ("satm", "mtt"):
            out = self.memory_root / f"{req.dataset}-ipc{req.ipc}-{memory}"
            cfg = condense_config(req.dataset, req.ipc, memory, req.condense_overrides)
            if (out / META_FILE).exists():
                found = load_synthetic(out)
                want = json.loads(json.dumps(cfg.to_dict()))
                if found.meta.get("config") != want:  # e.g. an older preset
                    raise SatmError(f"{out} was condensed with other settings than today's {memory} config "
                                    f"({_differences(found.meta.get('config') or {}, want)}); remove it or "
                                    "use another --memory-dir")
                return self._check(found, memory, str(out))
            from satm_cl.condense import condense

            made = condense(cfg, out,
                            self.device, resume=True, cache_root=req.cache_dir, data_dir=req.data_dir,
                            progress=req.progress, executor=executor)
            return self._check(made, memory, str(out))
        out = self.memory_root / f"{req.dataset}-ipc{req.ipc}-{memory}-seed{req.seed}"
        if (out / META_FILE).exists():
            return self._check(load_synthetic(out), memory, str(out))
        from satm_cl.baselines import create_baseline

        made = create_baseline(memory, req.dataset, req.ipc, seed=req.seed, device=self.device,
                               data_dir=req.data_dir)
        made.save(out)
        return self._check(made, memory, str(out))

    def _check(self, s: SyntheticSet, memory: str, where: str) -> SyntheticSet:
        req = self.req
        if s.meta["dataset"] != req.dataset or s.num_classes != self.splits.num_classes:
            raise SatmError(f"{memory} memory {where} is a {s.meta['dataset']} set, not {req.dataset}")
        if int(s.meta["ipc"]) != req.ipc or int(s.labels.numel()) != self.mem_size:
            raise SatmError(f"{memory} memory {where} holds {s.labels.numel()} images (ipc {s.meta['ipc']}), "
                            f"not ipc {req.ipc} x {self.splits.num_classes} classes = {self.mem_size}")
        return s

    def run(
        self, memory: str, source: SyntheticSet | None, order_seed: int, label: str | None
    ) -> ContinualResult:
        from satm_cl.continual import protocols
        from satm_cl.continual.buffers import CondensedBuffer, SubsetBuffer
        from satm_cl.training import TrainConfig

        cfg, req = self.cfg, self.req
        prep, source = self.space(memory, source, order_seed)
        scenario = self.scenario(prep, order_seed)
        replay_dsa = None if req.protocol == "retrain" else cfg.dsa
        buffer: Any
        if memory in STREAM_MEMORIES:
            condense_fn = self.stream_condenser(memory, order_seed)
            buffer = CondensedBuffer(condense_fn, self.mem_size, dsa=replay_dsa, seed=order_seed)
            # Each experience's set learns an LR for its own few-class trajectories (digits: 1e-4 to 0.03,
            # 0.05 offline); none was learned for their union, so train at the preset's LR, as real subsets.
            lr = cfg.lr_init
        elif source is None:
            buffer = protocols.avalanche_buffer(memory, self.mem_size)
            lr = cfg.lr_init
        else:
            kind = CondensedBuffer if memory in ("satm", "mtt") else SubsetBuffer
            buffer = kind(source, self.mem_size, dsa=replay_dsa, seed=order_seed)
            lr = buffer.lr
        if buffer.max_size != self.mem_size:
            raise AssertionError(f"{memory} memory has {buffer.max_size} slots, expected {self.mem_size}")
        if req.protocol == "retrain":
            train_cfg = TrainConfig(epochs=self.epochs, lr=lr, dsa=cfg.dsa)
            feats = protocols.feature_config(lr=cfg.expert.lr, dsa=cfg.expert.dsa)
            return protocols.retrain_protocol(scenario, buffer, self.make_model, train_cfg, order_seed,
                                              self.device, feats, label)
        memory_arg = None if memory == "gdumb" else buffer
        return protocols.strategy_protocol(scenario, memory_arg, req.protocol, self.make_model, order_seed,
                                           self.mem_size, self.device, epochs=self.epochs, progress=label,
                                           reset_optimizer=req.reset_optimizer, replay_batch=req.replay_batch)

    def stream_condenser(self, memory: str, order_seed: int) -> CondenseFn:
        """Per-experience condensation for a stream memory; artifacts under `<memory root>/stream/`. A ZCA
        preset's whitening is fitted on the first experience of `order_seed`'s class order."""
        req, spec = self.req, STREAM_MEMORIES[memory]
        check_classes_per_step(req, self.splits.num_classes)  # also here for workers given a job directly
        first = first_experience(self.splits.num_classes, req.steps, order_seed)
        return experience_condenser(spec.method, req.dataset, req.ipc, self.memory_root / "stream",
                                    self.device, req.cache_dir, req.data_dir, req.progress,
                                    req.condense_overrides, zca_classes=first,
                                    conditioned=spec.conditioned, real_first=spec.real_first)


def first_experience(num_classes: int, steps: int, order_seed: int) -> list[int]:
    """The classes of the first experience of `order_seed`'s class order, sorted."""
    from satm_cl.continual.scenarios import draw_class_order

    return sorted(draw_class_order(num_classes, order_seed)[: num_classes // steps])


def stream_whitened(memory: str, req: ContinualRequest) -> bool:
    """Whether `memory` trains in a ZCA fitted on the first experience only: a stream-mode memory when the
    run's config (its stream condensation's, else the preset's; with the request's overrides) whitens."""
    if MEMORY_MODES[memory] != "stream":
        return False
    method = STREAM_MEMORIES[memory].method if memory in STREAM_MEMORIES else "satm"
    return condense_config(req.dataset, req.ipc, method, req.condense_overrides).expert.zca


def experience_condenser(
    method: str, dataset: str, ipc: int, root: Path, device: torch.device | str = "cpu",
    cache_dir: Path | None = None, data_dir: Path | None = None, progress: bool = False,
    overrides: dict[str, Any] | None = None, zca_classes: list[int] | None = None, conditioned: bool = False,
    real_first: bool = False,
) -> CondenseFn:
    """A `condense_fn(classes, memory)` for `CondensedBuffer`: condense only those classes' data on arrival.

    Experts train on those classes alone (their store is keyed by the sorted class set, like the artifact
    `<root>/<dataset>-ipc<k>-<method>-classes<a-b>`), so runs whose experiences hold the same classes (other
    class orders, other protocols) reuse both. Only the dataset's per-channel normalisation constants come
    from the whole train split. A whitening config (ZCA) is fitted on `zca_classes`' train images (the first
    experience's, so every experience's set shares one space; the artifact name says `-zca<classes>`);
    without ZCA `zca_classes` is ignored. `conditioned`: experts and student also train on the `memory` held
    when the experience arrives (none for the first); its fingerprint joins the store's identity and the
    artifact's name (`-mem<fingerprint>`), so sets are reused only after the very same memory. A single
    class with no memory yet (the first experience of one class per step) has nothing to match: its set is
    the condensation's starting images (`condense.api.starting_set`, name ending `-start`). `real_first`
    (with `conditioned`): so is the first experience's set whatever its classes, so later experiences are
    condensed against real images rather than against a condensation of the first experience alone.
    """

    def condense_classes(classes: list[int], memory: MemoryImages | None = None) -> SyntheticSet:
        from satm_cl.condense import condense
        from satm_cl.condense.api import starting_set

        base = condense_config(dataset, ipc, method, overrides)
        fit = sorted(zca_classes) if base.expert.zca and zca_classes is not None else None
        memory = memory if conditioned else None
        fingerprint = None if memory is None else memory.fingerprint()
        cfg = replace(base, expert=replace(base.expert, classes=sorted(classes), zca_classes=fit,
                                           memory=fingerprint))
        name = f"{dataset}-ipc{ipc}-{method}-classes{'-'.join(map(str, sorted(classes)))}"
        name = name if fit is None else f"{name}-zca{'-'.join(map(str, fit))}"
        start = conditioned and memory is None and (real_first or len(classes) == 1)
        rule = "starting images: " + ("nothing to match" if len(classes) == 1 else "first experience")
        name = f"{name}-start" if start else name
        out = Path(root) / (name if fingerprint is None else f"{name}-mem{fingerprint}")
        # grid workers running other class orders may reach the same set at once: one condenses it, the
        # others wait on the lock (a file inside the set's directory) and then read it
        with locked(out / "condense"):
            if (out / META_FILE).exists():
                made = load_synthetic(out)
                if made.meta.get("config") != json.loads(json.dumps(cfg.to_dict())):
                    raise SatmError(f"{out} was condensed with other settings; remove it or use another "
                                    "--out")
                return made
            if start:
                return starting_set(cfg, out, data_dir, rule)
            return condense(cfg, out, torch.device(device), cache_root=cache_dir, data_dir=data_dir,
                            resume=True, progress=progress, memory=memory)

    return condense_classes


def memory_config(memory: str, req: ContinualRequest) -> dict[str, Any]:
    """What a record's config says about its memory: `memory_mode`, `zca_fit` when it trains in a whitening
    fitted on the first experience only, `conditioned_on` and `first_experience` for conditioned stream
    memories, and any condensation overrides."""
    out: dict[str, Any] = {"memory_mode": MEMORY_MODES[memory]}
    if stream_whitened(memory, req):
        out["zca_fit"] = "first experience"
    spec = STREAM_MEMORIES.get(memory)
    if spec is not None and spec.conditioned:
        out["conditioned_on"] = "memory so far"
    if spec is not None and spec.real_first:
        init = condense_config(req.dataset, req.ipc, spec.method, req.condense_overrides).init
        out["first_experience"] = "starting images (real)" if init == "real" else f"starting images ({init})"
    if req.condense_overrides and memory in ("satm", "mtt", *STREAM_MEMORIES):
        out["condense_overrides"] = req.condense_overrides
    return out


def _config(
    req: ContinualRequest, splits: DatasetSplits, order: list[int], mem_size: int, epochs: int
) -> dict[str, Any]:
    config: dict[str, Any] = {"protocol": req.protocol, "steps": req.steps,
                              "classes_per_step": splits.num_classes // req.steps, "class_order": order,
                              "mem_size": mem_size, "epochs": epochs}
    if req.reset_optimizer:  # only when set: records made before the option keep their config
        config["reset_optimizer"] = True
    if req.replay_batch is not None:  # likewise
        config["replay_batch"] = req.replay_batch
    return config


# the parts of a record's config that make one run setup: every memory in one `out` shares them
SETUP_KEYS = ("protocol", "steps", "classes_per_step", "mem_size", "epochs", "reset_optimizer",
              "replay_batch")


def _differences(have: dict[str, Any], want: dict[str, Any]) -> str:
    """`key X there vs Y now` for every key whose value differs (one level of nesting spelled `a.b`)."""
    parts = []
    for key in sorted(set(have) | set(want)):
        a, b = have.get(key), want.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b)
            parts += [f"{key}.{p}" for p in inner.split(", ")] if inner else []
        elif a != b:
            parts.append(f"{key} {_shown(a)} there vs {_shown(b)} now")
    return ", ".join(parts)


def _shown(value: Any) -> str:
    """A setting as a difference message shows it: a key a record leaves out is the default."""
    return "not set (default)" if value is None else repr(value)


def _check_existing(path: Path, req: ContinualRequest, arch: str, configs: dict[int, dict[str, Any]]) -> None:
    """Refuse to mix records of different settings in one `out`: every continual record there must share this
    request's setup (dataset, IPC, arch, protocol, steps, memory size, epochs; a class order per seed), and a
    memory rerun must have its memory's settings."""
    if not path.exists():
        return
    setup = {"dataset": req.dataset, "ipc": req.ipc, "arch": arch}
    some = next(iter(configs.values()))
    for rec in read_records(path):
        if rec["stage"] != STAGE:
            continue
        cfg = rec.get("config") or {}
        have = {**{k: rec[k] for k in setup}, **{k: cfg.get(k) for k in SETUP_KEYS}}
        want = {**setup, **{k: some.get(k) for k in SETUP_KEYS}}
        if rec["seed"] in configs:
            have["class_order"] = cfg.get("class_order")
            want["class_order"] = configs[rec["seed"]]["class_order"]
        if have != want:
            what = f"{rec['method']} order {rec['seed']}: {_differences(have, want)}"
            raise SatmError(f"{path} already holds continual results made with other settings ({what}); "
                            "use another --out")
        if rec["method"] not in req.memories or rec["seed"] not in configs:
            continue
        want = {**configs[rec["seed"]], **memory_config(rec["method"], req)}
        for key in ("memory_mode", "set_fingerprint"):  # absent from records written before they were kept
            if key not in cfg:
                want.pop(key, None)
        if "set_fingerprint" in cfg:  # checked against the set itself once it is loaded (`_check_set`)
            want["set_fingerprint"] = cfg["set_fingerprint"]
        if cfg != want:
            raise SatmError(f"{path} already holds {rec['method']} order {rec['seed']} results with other "
                            f"settings ({_differences(cfg, want)}); use another --out")


def _check_set(path: Path, req: ContinualRequest, memory: str, fingerprint: str) -> None:
    """Refuse to add results of another `memory` set (another `--synthetic`, a re-made memory) to records of
    the set already measured in `path` (`config.set_fingerprint`, SHA-256 of images, labels and LR)."""
    if not path.exists():
        return
    for rec in read_records(path):
        have = (rec.get("config") or {}).get("set_fingerprint")
        if rec["stage"] == STAGE and rec["method"] == memory and have not in (None, fingerprint):
            raise SatmError(f"{path} already holds {memory} results of another set (fingerprint {have} there "
                            f"vs {fingerprint} now, e.g. another --synthetic); use another --out")


def _records(
    req: ContinualRequest, memory: str, arch: str, order_seed: int, result: ContinualResult,
    config: dict[str, Any],
) -> list[Record]:
    base = {"stage": STAGE, "method": memory, "dataset": req.dataset, "ipc": req.ipc, "arch": arch,
            "seed": order_seed, "config": {**config, **memory_config(memory, req)}}
    rows: list[Record] = []
    for i, (row, avg) in enumerate(zip(result.matrix, result.avg_accuracy, strict=True)):
        rows.append({**base, "metric": "avg_accuracy", "value": avg, "step": i + 1})
        rows.extend({**base, "metric": "step_accuracy", "value": acc, "step": i + 1, "eval_step": j + 1}
                    for j, acc in enumerate(row))
    last = len(result.matrix)
    rows.append({**base, "metric": "forgetting", "value": result.forgetting, "step": last})
    rows.append({**base, "metric": "avg_incremental_accuracy", "value": result.avg_incremental_accuracy,
                 "step": last})
    rows.append({**base, "metric": "bwt", "value": result.bwt, "step": last})
    return rows
