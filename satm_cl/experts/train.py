"""Train expert networks on real data and record their flat parameters at every epoch (MTT)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from satm_cl.data import DatasetSplits, Preprocessor, Split, create_dataset
from satm_cl.device import kernels, precision_warning
from satm_cl.errors import SatmError
from satm_cl.experts.config import ExpertConfig
from satm_cl.experts.store import TrajectoryStore, store_path
from satm_cl.io import check_out_dir, claimed
from satm_cl.models import ParamLayout, create_model
from satm_cl.progress import progress_bar
from satm_cl.replay_memory import MemoryImages, require_memory, with_memory
from satm_cl.seeding import derive_seed, make_generator
from satm_cl.training import TrainConfig, accuracy, train_model
from satm_cl.versions import package_versions

if TYPE_CHECKING:
    from satm_cl.execution import ExecConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedData:
    """A dataset in model-input space on a device, with the preprocessor that put it there."""

    splits: DatasetSplits
    prep: Preprocessor
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def restrict_classes(splits: DatasetSplits, classes: list[int] | None) -> DatasetSplits:
    """Keep only `classes` in every split (labels and the class list unchanged), e.g. one experience."""
    if classes is None:
        return splits
    bad = [c for c in classes if not 0 <= c < splits.num_classes]
    if bad:
        raise SatmError(f"classes {bad} outside the {splits.num_classes} classes of {splits.name}")
    wanted = torch.tensor(sorted(classes))

    def keep(s: Split) -> Split:
        mask = torch.isin(s.y, wanted)
        return Split(s.x[mask], s.y[mask])

    return replace(splits, train=keep(splits.train), val=keep(splits.val), test=keep(splits.test))


def zca_fit_images(full: DatasetSplits, cfg: ExpertConfig) -> torch.Tensor | None:
    """The train images of `cfg.zca_classes` (taken from `full`, the unrestricted dataset) that its ZCA is
    fitted on, or None when the whitening is fitted on the experts' own train split."""
    return None if cfg.zca_classes is None else restrict_classes(full, cfg.zca_classes).train.x


def fit_preprocessor(splits: DatasetSplits, zca: bool, zca_fit: torch.Tensor | None = None) -> Preprocessor:
    """Normalisation with the dataset's constants, then ZCA iff `zca`, fitted on `zca_fit` (default: the
    train split of `splits`)."""
    fit_x = splits.train.x if zca_fit is None else zca_fit
    return Preprocessor.fit(fit_x, splits.mean, splits.std, zca=zca)


def prepare(
    splits: DatasetSplits, zca: bool, device: torch.device, zca_fit: torch.Tensor | None = None
) -> PreparedData:
    """Fit the preprocessor (`fit_preprocessor`) and map train/val into model-input space."""
    prep = fit_preprocessor(splits, zca, zca_fit)
    return PreparedData(
        splits,
        prep,
        prep.transform(splits.train.x).to(device),
        splits.train.y.to(device),
        prep.transform(splits.val.x).to(device),
        splits.val.y.to(device),
    )


def expert_train_config(cfg: ExpertConfig, epochs: int | None = None) -> TrainConfig:
    """The SGD settings experts train with (constant LR, as MTT); baselines reuse them for features."""
    return TrainConfig(
        epochs=cfg.epochs if epochs is None else epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        decay_at=None,
        dsa=cfg.dsa,
        precision=cfg.precision,
    )


def stratified_subset(y: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Indices of a class-balanced random subset of `size` (per class ⌊size/classes⌋, at least 1)."""
    gen = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    per = max(1, size // len(classes))
    picks = []
    for c in classes:
        idx = (y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(idx.numel(), generator=gen)[:per]])
    return torch.cat(picks).sort().values


def expert_model(cfg: ExpertConfig, splits: DatasetSplits, seed: int) -> torch.nn.Module:
    """The architecture experts (and the condensation inner loop) use, deterministically initialised."""
    c, h, w = splits.image_shape
    return create_model(cfg.arch, c, splits.num_classes, (h, w), seed=seed, **cfg.arch_kwargs)


def subset(
    x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed stratified subset of (x, y) of about `size` images (all of it when None or larger)."""
    if size is None or size >= len(y):
        return x, y
    keep = stratified_subset(y.cpu(), size, seed).to(y.device)
    return x[keep], y[keep]


def train_one_expert(
    model: torch.nn.Module,
    layout: ParamLayout,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    train_cfg: TrainConfig,
    seed: int,
) -> tuple[torch.Tensor, list[float]]:
    """Train one expert in place; return its trajectory [epochs+1, P] and per-epoch val accuracy (%).

    The per-epoch bookkeeping is one parameter copy into a preallocated row and one forward pass over
    (val_x, val_y), kept small by the caller (a fixed subset); no test data is read here."""
    trajectory = torch.empty(train_cfg.epochs + 1, layout.numel)
    trajectory[0] = layout.flatten(model)
    val: list[float] = []

    def record(epoch: int, m: torch.nn.Module) -> None:
        trajectory[epoch] = layout.flatten(m)
        val.append(accuracy(m, val_x, val_y))

    train_model(model, train_x, train_y, train_cfg, make_generator(seed, "train"), on_epoch=record)
    return trajectory, val


def train_experts(
    cfg: ExpertConfig,
    cache_root: Path,
    device: torch.device,
    data_dir: Path | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    indices: Sequence[int] | None = None,
    executor: ExecConfig | None = None,
    memory: MemoryImages | None = None,
    spare: Sequence[int] = (),
) -> TrajectoryStore:
    """Train the experts `cfg` asks for (or only `indices`) that the store does not hold yet; return the
    store. With `executor`, each missing expert is one job of a grid (see `satm_cl.execution`). `spare`:
    other experts this call may train while one of its own is being trained by another process
    (`claim_experts`; a grid job's are the rest of its grid).

    Per epoch only val accuracy on a fixed subset (`cfg.val_subset`) is taken; train accuracy (on a
    subset of the same size) and test accuracy are taken once per expert, after training, and recorded
    in the manifest as one-element lists (`accuracy.train`, `accuracy.test`; `accuracy.val` per epoch).
    A config conditioned on a replay memory (`cfg.memory`) needs its images in `memory`: the experts train
    on the real data plus those images at a class-balanced share (`satm_cl.replay_memory.with_memory`);
    val and test accuracy stay on the real classes of `cfg.classes`.
    """
    check_out_dir(cache_root, "--cache-dir")
    require_memory(cfg.memory, memory, cfg.classes)
    full = create_dataset(cfg.dataset, data_dir=data_dir, val_fraction=cfg.val_fraction)
    splits = restrict_classes(full, cfg.classes)
    zca_fit = zca_fit_images(full, cfg)  # bad zca_classes are refused here, before a store is created
    path = store_path(cache_root, cfg)
    probe = expert_model(cfg, splits, seed=0)
    layout = ParamLayout.from_module(probe)
    store = TrajectoryStore.create_or_open(path, cfg, layout.to_dict(), package_versions())
    finished = set(store.done(indices))
    todo = [i for i in (range(cfg.num_experts) if indices is None else indices) if i not in finished]
    if not todo:
        return store
    if say is not None:
        say(f"expert store {path} has {len(finished)}/{cfg.num_experts} experts; training the rest first")
    warning = precision_warning(cfg.precision, device, "expert training")
    if warning is not None:
        (say or log.warning)(warning)
    if executor is not None:
        return _train_grid(cfg, cache_root, device, data_dir, todo, executor, progress, memory)
    data = prepare(splits, cfg.zca, device, zca_fit)
    train_x, train_y = data.train_x, data.train_y
    if cfg.train_subset is not None and cfg.train_subset < len(train_y):
        keep = stratified_subset(train_y.cpu(), cfg.train_subset, derive_seed(cfg.seed, "subset")).to(device)
        train_x, train_y = train_x[keep], train_y[keep]
    train_x, train_y = with_memory(train_x, train_y, memory)
    val_x, val_y = subset(data.val_x, data.val_y, cfg.val_subset, derive_seed(cfg.seed, "val-subset"))
    acc_x, acc_y = subset(train_x, train_y, cfg.val_subset, derive_seed(cfg.seed, "train-acc-subset"))
    train_cfg = expert_train_config(cfg)
    test: tuple[torch.Tensor, torch.Tensor] | None = None
    with progress_bar(total=len(todo), desc=f"experts {cfg.dataset}/{cfg.arch}", disable=not progress) as bar:
        for i in claim_experts(store, todo, spare):
            seed = derive_seed(cfg.seed, "expert", i)
            model = expert_model(cfg, splits, seed).to(device)
            trajectory, val = train_one_expert(model, layout, train_x, train_y, val_x, val_y, train_cfg, seed)
            if test is None:  # the test split is read only once training of the first expert is over
                test = (data.prep.transform(splits.test.x).to(device), splits.test.y.to(device))
            accs = {"train": [accuracy(model, acc_x, acc_y)], "val": val, "test": [accuracy(model, *test)]}
            store.add(i, trajectory, accs, kernels(device))
            bar.set_postfix(test=f"{accs['test'][-1]:.1f}%", refresh=False)
            bar.update()
        if bar.n < len(todo):  # the rest were trained meanwhile by another process sharing the store
            bar.set_postfix_str(f"{len(todo) - bar.n} trained by another process", refresh=False)
            bar.update(len(todo) - bar.n)
    return store


def claim_experts(store: TrajectoryStore, todo: Sequence[int], spare: Sequence[int] = ()) -> Iterator[int]:
    """The experts this process should train, each yielded while it holds that expert's lock. Processes
    sharing a store (grid jobs whose memories need the same experts, or two commands on one preset) split
    its experts: one of `todo` another process is training is skipped; while any is, free unfinished
    experts of `spare` are trained instead; then each skipped one is waited for and trained only if it did
    not finish (its process died)."""
    busy = []
    for i in todo:
        with claimed(store.file(i), wait=False) as mine:
            if not mine:
                busy.append(i)
            elif not store.finished(i):
                yield i
    for j in spare if busy else ():
        if j in todo:
            continue
        with claimed(store.file(j), wait=False) as mine:
            if mine and not store.finished(j):
                yield j
    for i in busy:
        with claimed(store.file(i), wait=True):
            if not store.finished(i):
                yield i


def _quiet(message: str) -> None:
    """A `say` that drops its message (grid workers)."""


@dataclass(frozen=True)
class ExpertJob:
    """One expert of a store as a grid job (picklable; paths absolute so any worker finds them)."""

    cfg: ExpertConfig
    index: int
    cache_root: Path
    device: str
    data_dir: Path | None
    memory: MemoryImages | None = None
    others: tuple[int, ...] = ()  # the rest of the grid: trained here while this one is held elsewhere


def train_expert_job(job: ExpertJob) -> int:
    """Worker side: train expert `job.index` and add it to the store (atomic file, locked manifest)."""
    train_experts(
        job.cfg,
        job.cache_root,
        torch.device(job.device),
        job.data_dir,
        progress=False,
        say=_quiet,  # the driver has said what there is to say (store, precision) once, not once a job
        indices=[job.index],
        memory=job.memory,
        spare=job.others,
    )
    return job.index


def _train_grid(
    cfg: ExpertConfig,
    cache_root: Path,
    device: torch.device,
    data_dir: Path | None,
    todo: list[int],
    executor: ExecConfig,
    progress: bool = True,
    memory: MemoryImages | None = None,
) -> TrajectoryStore:
    from satm_cl.execution import Job, JobResult, raise_failures, run_jobs

    root = Path(cache_root).resolve()
    data = None if data_dir is None else Path(data_dir).resolve()
    jobs = [
        Job(
            f"expert {i} of {cfg.dataset}/{cfg.arch} seed {cfg.seed}",
            train_expert_job,
            ExpertJob(cfg, i, root, str(device), data, memory, tuple(j for j in todo if j != i)),
        )
        for i in todo
    ]
    # a grid of experts can run for many minutes: one tick per expert as it finishes
    bar = progress_bar(total=len(jobs), desc=f"experts {cfg.dataset}/{cfg.arch}", disable=not progress)

    def commit(result: JobResult) -> None:
        bar.update()

    try:
        results = run_jobs(jobs, executor, commit)
    finally:
        bar.close()
    raise_failures(results)
    return TrajectoryStore.open(store_path(cache_root, cfg))
