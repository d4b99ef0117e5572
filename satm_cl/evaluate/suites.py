"""Evaluation suites: each turns a SyntheticSet into targets (arch x test set per run) and skip notes.

- `in-domain`:  the set's own ConvNet, tested on its dataset's real test split.
- `cross-arch`: every registered model that takes the image size (narrowed by `archs`); models that refuse
                the size become a `skipped` note instead of an error.
- `ood`:        out-of-domain, the offline domain-shift pair that always runs on a CPU without downloads:
                a set condensed on `mnist5k` (28×28 MNIST) is tested on sklearn `digits` upsampled to 28×28,
                and a set on `digits` (8×8) on `mnist5k` downsampled to 8×8; both resamplings are bilinear
                with antialiasing (which for downsampling averages over the source footprint, like area).
                The same trained ConvNet is also scored on the set's own test split (recorded with no
                `test_dataset`), so each shifted number sits beside its in-domain one. Datasets with no
                offline partner (or whose partner cannot load here) record one `skipped` note, nothing else.

The paper's (Gao et al. 2025) out-of-domain results are on CIFAR-10/100, Tiny ImageNet and the ImageNet
subsets (plus cross-architecture and continual-learning transfer, which the `cross-arch` and `continual`
suites cover). None of those datasets, nor any shifted test set built from them (e.g. corrupted or
re-collected CIFAR test sets, transfer between ImageNet subsets), is shipped here or loads without a
download, and the paper's exact shift protocol could not be read from a searchable copy, so no paper OOD
pair is registered. Add one to `OOD_PARTNERS` once both sides load through `satm_cl.data` (`--data-dir`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from satm_cl.data import create_dataset, dataset_status
from satm_cl.errors import SatmError
from satm_cl.evaluate.protocol import arch_refusal, set_arch
from satm_cl.models import list_models
from satm_cl.registry import Registry
from satm_cl.synthetic import SyntheticSet

OWN = "own"  # key of the set's own test split in `SuiteContext.tests`

# set's dataset -> the dataset its ConvNet is also tested on (resampled to the set's image size)
OOD_PARTNERS: dict[str, str] = {"mnist5k": "digits", "digits": "mnist5k"}


@dataclass(frozen=True)
class Target:
    """One number per run: `arch` trained on the set, scored on `test` (a key of `SuiteContext.tests`)."""

    stage: str
    arch: str
    test: str = OWN
    test_dataset: str | None = None


@dataclass(frozen=True)
class Note:
    """A recorded skip (metric `skipped`, no value): why a suite measured nothing for `arch`."""

    stage: str
    arch: str
    text: str
    test_dataset: str | None = None


@dataclass
class SuiteContext:
    """What suites plan from; `tests` maps names to real [0,1] (x, y) and suites may add shifted sets."""

    syn: SyntheticSet
    dataset: str
    tests: dict[str, tuple[torch.Tensor, torch.Tensor]]
    archs: tuple[str, ...] | None = None
    data_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


Suite = Callable[[SuiteContext], tuple[list[Target], list[Note]]]
SUITES: Registry[Suite] = Registry("suite")
ALL = ("in-domain", "cross-arch", "ood")


def list_suites() -> list[str]:
    """Suite names accepted by the runner (plus `all`)."""
    return SUITES.names()


def resample(x01: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[N,C,H,W] [0,1] images resized to `size` (bilinear, antialiased), clamped back into [0,1]."""
    if tuple(x01.shape[-2:]) == tuple(size):
        return x01
    out = F.interpolate(x01, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


@SUITES.register("in-domain")
def in_domain(ctx: SuiteContext) -> tuple[list[Target], list[Note]]:
    """The set's own ConvNet on its own test split."""
    return [Target("in-domain", set_arch(ctx.syn))], []


@SUITES.register("cross-arch")
def cross_arch(ctx: SuiteContext) -> tuple[list[Target], list[Note]]:
    """Every (or every requested) registered model; those refusing the image size become notes."""
    targets, notes = [], []
    for arch in ctx.archs or tuple(list_models()):
        why = arch_refusal(ctx.syn, arch)
        if why is None:
            targets.append(Target("cross-arch", arch))
        else:
            notes.append(Note("cross-arch", arch, why))
    return targets, notes


@SUITES.register("ood")
def out_of_domain(ctx: SuiteContext) -> tuple[list[Target], list[Note]]:
    """The set's ConvNet on its offline partner dataset's test split, resampled to the set's size."""
    arch = set_arch(ctx.syn)
    partner = OOD_PARTNERS.get(ctx.dataset)
    if partner is None:
        return [], [Note("ood", arch, f"no offline out-of-domain partner for {ctx.dataset}")]
    status = dataset_status(partner, ctx.data_dir)
    if status != "ready":
        return [], [Note("ood", arch, f"partner dataset {partner} not available: {status}")]
    if partner not in ctx.tests:
        other = create_dataset(partner, data_dir=ctx.data_dir)
        test = other.test
        c, h, w = (int(v) for v in ctx.syn.meta["image_shape"])
        if other.image_shape[0] != c or other.num_classes != ctx.syn.num_classes:
            raise SatmError(f"ood partner {partner} does not match {ctx.dataset}'s channels/classes")
        ctx.tests[partner] = (resample(test.x, (h, w)), test.y)
        ctx.extra[partner] = f"{partner} test split resampled to {h}×{w} (bilinear, antialias)"
    return [Target("ood", arch), Target("ood", arch, partner, partner)], []
