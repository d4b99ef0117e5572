"""Expert-trajectory settings (frozen, JSON-able; their hash names the store directory)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from satm_cl.errors import SatmError
from satm_cl.fields import PRECISION_NAMES, check_field_types, omit_late_defaults

# Settings added after stores and artifacts existed: written only when they differ from these defaults,
# so every older store keeps its hash and every older artifact's recorded config still matches.
LATE_DEFAULTS: dict[str, Any] = {"precision": "fp32", "zca_classes": None, "memory": None}


@dataclass(frozen=True)
class ExpertConfig:
    """How expert networks are trained on the real train split (MTT: SGD, no momentum, DSA)."""

    dataset: str = "digits"
    arch: str = "convnet"
    arch_kwargs: dict[str, Any] = field(default_factory=lambda: {"width": 64, "depth": 3, "norm": "instance"})
    zca: bool = False
    num_experts: int = 8
    epochs: int = 15
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64
    dsa: str = "color_crop_cutout_flip_scale_rotate"
    seed: int = 0
    val_fraction: float = 0.1
    train_subset: int | None = None  # experts train on a stratified subset of this size (CPU presets)
    classes: list[int] | None = None  # only these classes' real data (per-experience condensation)
    # per-epoch val accuracy (and the final train accuracy) on a fixed stratified subset of this size
    # (None: the whole split); bookkeeping only, so not part of the store's identity
    val_subset: int | None = 1000
    # forward-pass arithmetic of expert training (`satm_cl.training.PRECISIONS`: fp32 | bf16)
    precision: str = "fp32"
    # fit the ZCA whitening on only these classes' train images instead of the experts' own data: a stream
    # memory fits it once, on the first experience, so every experience's set shares one input space
    zca_classes: list[int] | None = None
    # fingerprint (`MemoryImages.fingerprint`) of replay-memory images of earlier classes the experts also
    # train on, repeated to a class-balanced share (memory-conditioned stream condensation); the images are
    # passed with the call, the fingerprint ties the store and the artifact to them
    memory: str | None = None

    def __post_init__(self) -> None:
        check_field_types(self, "expert config")
        checks = [
            (self.num_experts >= 1 and self.epochs >= 1, "num_experts and epochs must be ≥ 1"),
            (self.lr > 0 and self.batch_size >= 1, "lr must be > 0 and batch_size ≥ 1"),
            (0 <= self.momentum < 1 and self.weight_decay >= 0, "momentum in [0,1), weight_decay ≥ 0"),
            (0 < self.val_fraction < 1, "val_fraction must be in (0, 1)"),
            (self.train_subset is None or self.train_subset >= 1, "train_subset must be ≥ 1 (or unset)"),
            (self.classes is None or (bool(self.classes) and min(self.classes) >= 0), "classes must be ≥ 0"),
            (self.zca_classes is None or self.zca, "zca_classes needs zca"),
            (
                self.zca_classes is None or (bool(self.zca_classes) and min(self.zca_classes) >= 0),
                "zca_classes must be ≥ 0",
            ),
            (self.precision in PRECISION_NAMES, f"precision must be one of {', '.join(PRECISION_NAMES)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise SatmError(f"bad expert config: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return omit_late_defaults(asdict(self), LATE_DEFAULTS)

    def identity(self) -> dict[str, Any]:
        """What determines the trajectories (the store name); `num_experts` is not part of it, so
        asking for more experts extends an existing store instead of starting a new one; nor is
        `val_subset`, which changes what is measured, not the trajectories."""
        d = self.to_dict()
        d.pop("num_experts")
        d.pop("val_subset")
        return d
