"""One call from a resolved config to a saved SyntheticSet: experts first if missing, then condense."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from satm_cl.condense.engine import Condenser, init_images, synthetic_classes
from satm_cl.condense.minimizers import create_minimizer
from satm_cl.config import CondenseConfig
from satm_cl.data import DSA, check_data_dir, create_dataset
from satm_cl.device import precision_warning, resolve_device
from satm_cl.errors import SatmError
from satm_cl.experts.train import prepare, restrict_classes, train_experts, zca_fit_images
from satm_cl.io import cache_dir, check_out_dir, make_out_dir
from satm_cl.replay_memory import MemoryImages, require_memory
from satm_cl.seeding import make_generator
from satm_cl.synthetic import SyntheticSet, make_meta

if TYPE_CHECKING:
    from satm_cl.execution import ExecConfig

log = logging.getLogger(__name__)


def condense(
    cfg: CondenseConfig,
    out: Path,
    device: torch.device | str = "auto",
    cache_root: Path | None = None,
    data_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = log.info,
    memory: MemoryImages | None = None,
    executor: ExecConfig | None = None,
) -> SyntheticSet:
    """Condense `cfg.dataset` into `out`, training (and caching) the expert store first if needed, and return
    the saved set. `cfg`: from `resolve_config`. `device`: a torch.device or a name ("auto", "cpu", "cuda").
    `out` must not hold another run's checkpoint; `resume=True` continues the one there (a finished run is
    reloaded, not redone). Progress checkpoints stay in `out` beside the artifact.

    `memory`: the replay memory a memory-conditioned config (`cfg.expert.memory`) trains beside, in the
    model-input space of this config (see `satm_cl.replay_memory`). `executor`: missing experts run as
    the jobs of that grid (e.g. two at a time on two cores, each with its own threads) instead of one after
    another in this process; the unroll always runs here."""
    if not isinstance(cfg, CondenseConfig):
        raise SatmError(f"condense needs a CondenseConfig (see resolve_config), got {type(cfg).__name__}")
    device = resolve_device(device) if isinstance(device, str) else device
    check_out_dir(out)  # everything checkable is refused before experts are trained, not after
    require_memory(cfg.expert.memory, memory, cfg.expert.classes)
    root = check_out_dir(cache_dir(cache_root), "--cache-dir")
    check_data_dir(data_dir)
    create_minimizer(cfg.minimizer, cfg.rho)
    DSA(cfg.dsa), DSA(cfg.expert.dsa)
    if cfg.init == "real":
        _check_class_sizes(cfg, data_dir)
    store = train_experts(
        cfg.expert, root, device, data_dir=data_dir, progress=progress, memory=memory,
        say=None if say == log.info else say,  # None: its warnings go to log.warning
        executor=executor,
    )
    warning = precision_warning(cfg.precision, device, "the condensation unroll")
    if warning is not None:
        (log.warning if say == log.info else say)(warning)  # API callers see it too, not only the CLI
    full = create_dataset(cfg.dataset, data_dir=data_dir, val_fraction=cfg.expert.val_fraction)
    splits = restrict_classes(full, cfg.expert.classes)
    data = prepare(splits, cfg.expert.zca, device, zca_fit_images(full, cfg.expert))
    return Condenser(cfg, store, data, device, out, memory).run(resume=resume, progress=progress)


def _check_class_sizes(cfg: CondenseConfig, data_dir: Path | None) -> None:
    """A set larger than one of its classes is refused before (possibly hours of) expert training; only the
    labels are kept, so the dataset is not held twice while the experts load their own copy."""
    splits = create_dataset(cfg.dataset, data_dir=data_dir, val_fraction=cfg.expert.val_fraction)
    counts = torch.bincount(splits.train.y, minlength=splits.num_classes)
    del splits
    short = [c for c in synthetic_classes(cfg, len(counts)) if int(counts[c]) < cfg.ipc]
    if short:
        c = short[0]
        raise SatmError(f"class {c} has {int(counts[c])} train images, fewer than ipc={cfg.ipc}")


def starting_set(
    cfg: CondenseConfig,
    out: Path,
    data_dir: Path | None = None,
    rule: str = "starting images: nothing to match",
) -> SyntheticSet:
    """The images a condensation of `cfg` starts from (its `init`, drawn as `Condenser` draws them, in the
    config's model-input space) saved in `out` as an artifact, with no expert and no outer step: for an
    experience with nothing to match (a single class and no replay memory yet), or one a stream memory keeps
    real on purpose. `rule` is the artifact's selection rule: why nothing was condensed."""
    make_out_dir(out)
    full = create_dataset(cfg.dataset, data_dir=data_dir, val_fraction=cfg.expert.val_fraction)
    splits = restrict_classes(full, cfg.expert.classes)
    data = prepare(splits, cfg.expert.zca, torch.device("cpu"), zca_fit_images(full, cfg.expert))
    x, labels = init_images(cfg, data, make_generator(cfg.seed, "condense"))
    meta = make_meta(
        dataset=cfg.dataset,
        class_names=splits.class_names,
        ipc=cfg.ipc,
        image_shape=splits.image_shape,
        mean=splits.mean,
        std=splits.std,
        method=cfg.method,
        config=cfg.to_dict(),
        seed=cfg.seed,
        selection={"rule": rule, "iteration": 0, "val_accuracy": None},
        arch=cfg.expert.arch,
        arch_kwargs=cfg.expert.arch_kwargs,
    )
    synthetic = SyntheticSet(x, labels, cfg.lr_init, meta, data.prep.tensors())
    synthetic.save(out)
    return synthetic
