"""The train-from-scratch protocol: N seeded runs of `training.train_runs` on a SyntheticSet.

Each run builds a fresh model, trains it on the set (SGD momentum 0.9, weight decay 5e-4, batch 256, LR =
the set's learned `lr`, x0.1 at half the epochs, the set's DSA) and tests it on real images mapped into the
set's model-input space with the set's own preprocessor (normalisation + ZCA). Run r of base seed s is
recorded as seed s + r and uses `derive_seed(s + r, arch)` for both the model init and the training RNG,
so a recorded seed reproduces its number exactly and different base seeds never collide.

Cross-architecture: `convnet` gets the artifact's own `arch_kwargs` (the net it was condensed with); every
other model its registry defaults (instance norm wherever the model takes `norm`, as MTT evaluates).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from satm_cl.baselines import preset_for
from satm_cl.errors import SatmError
from satm_cl.models import create_model
from satm_cl.models.stacked import stack_convnets
from satm_cl.seeding import derive_seed
from satm_cl.synthetic import SyntheticSet
from satm_cl.train_state import TrainCheckpoint
from satm_cl.training import TrainConfig, prefer_stacked, train_runs

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 256
EVAL_MOMENTUM = 0.9
EVAL_WEIGHT_DECAY = 5e-4
EVAL_DECAY_AT = 0.5

TestSets = Mapping[str, tuple[torch.Tensor, torch.Tensor]]


def set_arch(syn: SyntheticSet) -> str:
    """The architecture a set belongs to (the one it was condensed with; baselines: the preset's)."""
    return str(syn.meta.get("arch", "convnet"))


def arch_kwargs_for(syn: SyntheticSet, arch: str) -> dict[str, Any]:
    """Model options for evaluating `syn` on `arch`: the artifact's own for its arch, defaults otherwise."""
    return dict(syn.meta.get("arch_kwargs") or {}) if arch == set_arch(syn) else {}


def set_eval_defaults(syn: SyntheticSet) -> tuple[str, int]:
    """(DSA strategy, evaluation epochs) from the set's resolved config, else from its dataset's preset."""
    config = syn.meta.get("config") or {}
    if "dsa" in config and "eval_epochs" in config:
        return str(config["dsa"]), int(config["eval_epochs"])
    ipc = int(syn.meta["ipc"])
    cfg, _ = preset_for(str(syn.meta["dataset"]), ipc if ipc > 0 else None)
    return str(config.get("dsa", cfg.dsa)), int(config.get("eval_epochs", cfg.eval_epochs))


def build_model(
    syn: SyntheticSet, arch: str, seed: int | None = None, arch_kwargs: Mapping[str, Any] | None = None
) -> nn.Module:
    """A fresh `arch` classifier for `syn`'s image shape and classes (SatmError if it refuses the size)."""
    c, h, w = (int(v) for v in syn.meta["image_shape"])
    kwargs = arch_kwargs_for(syn, arch) if arch_kwargs is None else dict(arch_kwargs)
    return create_model(arch, c, syn.num_classes, (h, w), seed=seed, **kwargs)


def arch_refusal(syn: SyntheticSet, arch: str, arch_kwargs: Mapping[str, Any] | None = None) -> str | None:
    """Why `arch` cannot take `syn`'s images (the model's one-line message), or None if it can."""
    try:
        build_model(syn, arch, seed=0, arch_kwargs=arch_kwargs)
    except SatmError as exc:
        return str(exc)
    return None


def eval_train_config(
    syn: SyntheticSet, epochs: int, dsa: str | None = None, lr: float | None = None
) -> TrainConfig:
    """MTT's evaluation SGD settings with the set's learned LR (or `lr`: see `lr_protocol`) and DSA (else
    the preset's DSA)."""
    return TrainConfig(
        epochs=epochs,
        lr=float(syn.lr) if lr is None else float(lr),
        batch_size=EVAL_BATCH_SIZE,
        momentum=EVAL_MOMENTUM,
        weight_decay=EVAL_WEIGHT_DECAY,
        decay_at=EVAL_DECAY_AT,
        dsa=set_eval_defaults(syn)[0] if dsa is None else dsa,
    )


def run_seed(seed: int, run: int) -> int:
    """The recorded seed of run `run` under base seed `seed`."""
    return seed + run


def evaluate_runs(
    syn: SyntheticSet,
    arch: str,
    tests: TestSets,
    epochs: int,
    seeds: Sequence[int],
    device: torch.device | str,
    arch_kwargs: Mapping[str, Any] | None = None,
    dsa: str | None = None,
    stacked: bool | None = None,
    lr: float | None = None,
    checkpoint: TrainCheckpoint | None = None,
) -> list[dict[str, float]]:
    """Runs at recorded seeds `seeds`: train a fresh `arch` on `syn` per seed and return, per run, its
    accuracy (%) on each of `tests` (name -> (x, y) in the set's model-input space). One training serves
    every test set; runs train stacked as one computation where that is exact and pays
    (`training.train_runs`), else one after another, with the same numbers either way. `lr` None trains
    with the set's learned LR. `checkpoint`: the runs' training saves and resumes there
    (`satm_cl.train_state`; one run, or runs that train stacked)."""
    if not tests or not seeds:
        return [{} for _ in seeds]
    device = torch.device(device)
    run_seeds = [derive_seed(s, arch) for s in seeds]
    models = [build_model(syn, arch, seed=rs, arch_kwargs=arch_kwargs) for rs in run_seeds]
    cfg = eval_train_config(syn, epochs, dsa, lr)
    x, y = syn.images.to(device), syn.labels.to(device)
    trained = train_runs(models, x, y, cfg, run_seeds, stacked, checkpoint)
    per_test = {name: trained.accuracy(x.to(device), y.to(device)) for name, (x, y) in tests.items()}
    return [{name: accs[r] for name, accs in per_test.items()} for r in range(len(seeds))]


def run_groups(
    syn: SyntheticSet,
    arch: str,
    seeds: Sequence[int],
    device: torch.device | str,
    arch_kwargs: Mapping[str, Any] | None = None,
) -> list[list[int]]:
    """How `evaluate_runs` will train `seeds`: all in one stacked group where stacking applies and pays
    (`prefer_stacked`, models that stack exactly), else one group per seed, so callers can save per group."""
    seeds = list(seeds)
    device = torch.device(device)
    if len(seeds) > 1 and prefer_stacked(device, syn.images):
        probe = [build_model(syn, arch, seed=0, arch_kwargs=arch_kwargs) for _ in range(2)]
        if stack_convnets(probe) is not None:
            return [seeds]
    return [[s] for s in seeds]


def evaluate_run(
    syn: SyntheticSet,
    arch: str,
    tests: TestSets,
    epochs: int,
    seed: int,
    device: torch.device | str,
    arch_kwargs: Mapping[str, Any] | None = None,
    dsa: str | None = None,
    lr: float | None = None,
) -> dict[str, float]:
    """One run at recorded seed `seed` (see `evaluate_runs`); `lr` None trains with the set's learned LR."""
    return evaluate_runs(syn, arch, tests, epochs, [seed], device, arch_kwargs, dsa, lr=lr)[0]


def evaluate_set(
    syn: SyntheticSet,
    arch: str,
    test_x01: torch.Tensor,
    test_y: torch.Tensor,
    runs: int,
    epochs: int,
    seed: int,
    device: torch.device | str,
    arch_kwargs: Mapping[str, Any] | None = None,
    dsa: str | None = None,
    progress: bool = False,
) -> list[float]:
    """Test accuracies (%) of `runs` seeded train-from-scratch runs of `arch` on `syn`, tested on real
    [0,1] images `test_x01` mapped into the set's space; [] (logged) if `arch` refuses the image size."""
    why = arch_refusal(syn, arch, arch_kwargs)
    if why is not None:
        log.warning("skipping %s: %s", arch, why)
        return []
    device = torch.device(device)
    tests = {"test": (syn.preprocessor().to(device).transform(test_x01.to(device)), test_y.to(device))}
    seeds = [run_seed(seed, r) for r in range(runs)]
    if progress:
        log.info("evaluating %d runs of %s", runs, arch)
    return [acc["test"] for acc in evaluate_runs(syn, arch, tests, epochs, seeds, device, arch_kwargs, dsa)]
