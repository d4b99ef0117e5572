"""The train-from-scratch protocol: N seeded runs of `training.train_and_test` on a SyntheticSet.

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
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from satm_cl.baselines import preset_for
from satm_cl.errors import SatmError
from satm_cl.models import create_model
from satm_cl.seeding import derive_seed
from satm_cl.synthetic import SyntheticSet
from satm_cl.training import TrainConfig, accuracy, train_and_test

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
    """One run at recorded seed `seed`: train a fresh `arch` on `syn` once and return its accuracy (%) on
    each of `tests` (name -> (x, y) in the set's model-input space): one training serves every test set.
    `lr` None trains with the set's learned LR."""
    if not tests:
        return {}
    device = torch.device(device)
    run_seed_ = derive_seed(seed, arch)
    model = build_model(syn, arch, seed=run_seed_, arch_kwargs=arch_kwargs)
    cfg = eval_train_config(syn, epochs, dsa, lr)
    names = list(tests)
    first_x, first_y = tests[names[0]]
    # train_and_test trains `model` in place (nn.Module.to returns the module itself), so the same trained
    # model is then scored on the remaining test sets without a second training.
    out = {
        names[0]: train_and_test(
            model,
            syn.images.to(device),
            syn.labels.to(device),
            first_x.to(device),
            first_y.to(device),
            cfg,
            run_seed_,
        )
    }
    for name in names[1:]:
        x, y = tests[name]
        out[name] = accuracy(model, x.to(device), y.to(device))
    return out


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
    bar = tqdm(range(runs), desc=f"eval {arch}", leave=False, disable=not progress)
    return [
        evaluate_run(syn, arch, tests, epochs, run_seed(seed, r), device, arch_kwargs, dsa)["test"]
        for r in bar
    ]
