"""Evaluation suites: each turns a SyntheticSet into targets (arch x test set per run) and skip notes.

- `in-domain`:  the set's own ConvNet, tested on its dataset's real test split.
- `cross-arch`: every registered model that takes the image size (narrowed by `archs`); models that refuse
                the size become a `skipped` note instead of an error.
- `ood`:        out-of-domain, the offline domain-shift pair that always runs on a CPU without downloads:
                a set condensed on `mnist5k` (28×28 MNIST) is tested on sklearn `digits` upsampled to 28×28,
                and a set on `digits` (8×8) on `mnist5k` downsampled to 8×8; both resamplings are bilinear
                with antialiasing (which for downsampling averages over the source footprint, like area).
                The same trained ConvNet is also scored on the set's own test split (recorded with no
                `test_dataset`), so each shifted number sits beside its in-domain one.
                Corruptions (`satm_cl.data.corruptions`, default on for fashion-mnist, `corruptions` option
                elsewhere): the same ConvNet is also scored on corrupted copies of the set's own test split,
                9 corruptions x 3 severities, generated once per seed and cached under the cache directory;
                each is recorded with `test_dataset` = `<dataset>-C/<corruption>/<severity>`.
                Datasets with neither a loadable partner nor corruptions record one `skipped` note.

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
from satm_cl.data.corruptions import CORRUPTIONS, SEVERITIES, VERSION, corrupted_name, corrupted_test_set
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
    corruptions: tuple[str, ...] = ()  # corruption names the `ood` suite adds (see satm_cl.data.corruptions)
    corruption_seed: int = 0
    cache: Path | None = None  # where corrupted test sets are cached (required when `corruptions` is set)


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


def _partner(ctx: SuiteContext, arch: str) -> tuple[list[Target], list[Note]]:
    """The offline domain-shift partner's targets, or a note saying why there is none."""
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
    return [Target("ood", arch, partner, partner)], []


def _corrupted(ctx: SuiteContext, arch: str) -> list[Target]:
    """One target per corruption x severity of the set's own test split (generated or read from cache)."""
    if not ctx.corruptions:
        return []
    if ctx.cache is None:
        raise SatmError("the ood suite's corruptions need a cache directory")
    x, y = ctx.tests[OWN]
    targets = []
    for name in ctx.corruptions:
        for severity in SEVERITIES:
            label = corrupted_name(ctx.dataset, name, severity)
            if label not in ctx.tests:
                images, _ = corrupted_test_set(x, ctx.dataset, name, severity, ctx.corruption_seed, ctx.cache)
                ctx.tests[label] = (images, y)
            targets.append(Target("ood", arch, label, label))
    magnitudes = "; ".join(f"{n} {list(CORRUPTIONS.get(n).magnitudes)}" for n in ctx.corruptions)
    ctx.extra[f"{ctx.dataset}-C"] = (
        f"{ctx.dataset} test split corrupted (satm_cl.data.corruptions v{VERSION}, seed "
        f"{ctx.corruption_seed}, 8-bit), severities 1-3: {magnitudes}"
    )
    return targets


@SUITES.register("ood")
def out_of_domain(ctx: SuiteContext) -> tuple[list[Target], list[Note]]:
    """The set's ConvNet on its own test split, on its offline partner dataset's test split (resampled to
    the set's size) and on corrupted copies of its own test split; a note when none of the shifts exists."""
    arch = set_arch(ctx.syn)
    shifted, notes = _partner(ctx, arch)
    corrupted = _corrupted(ctx, arch)
    if corrupted:
        notes = []  # the corruptions stand in for a missing partner
    shifted += corrupted
    if not shifted:
        return [], notes
    return [Target("ood", arch), *shifted], notes
