"""Signs that a condensation ran off course: images far off the real images' scale, or a collapsed LR.

Trajectory matching can raise the loss-reducing direction's image step until the images leave the real
images' range while the learned LR falls towards its floor (seen on per-experience stream sets, whose
preset image step was set for a whole-dataset set: results/continual/digits-stream-lr-scale). The numbers
go into the artifact's metadata (`health`) and a set past either limit is flagged with a warning."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

# flagged above this many times the real train images' pixel std (model-input space); healthy sets in this
# project's runs sit at 0.7-2.2x, blown-up ones at 5-30x
STD_RATIO_LIMIT = 3.0
# flagged when the learned LR ends below this fraction of its starting value
LR_RATIO_LIMIT = 0.1


@dataclass(frozen=True)
class SetHealth:
    """How far a condensed set's images and learned LR ended from where they started."""

    pixel_std_ratio: float  # the set's pixel std over the real train images' (both in model-input space)
    lr_ratio: float  # the learned LR over the starting LR

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}

    def problems(self) -> list[str]:
        """One line per limit crossed (empty when the set looks healthy)."""
        found = []
        if self.pixel_std_ratio > STD_RATIO_LIMIT:
            found.append(f"images ended at {self.pixel_std_ratio:.1f}x the real images' pixel std (limit "
                         f"{STD_RATIO_LIMIT:g}x): the image step was likely too large for this set (try a "
                         "lower lr_img, or lr_img_scale: images for a class subset)")
        if self.lr_ratio < LR_RATIO_LIMIT:
            found.append(f"the learned LR fell to {self.lr_ratio:.3g}x its starting value (limit "
                         f"{LR_RATIO_LIMIT:g}x): models trained on this set barely move from their init")
        return found


def set_health(images: torch.Tensor, real_images: torch.Tensor, lr: float, lr_init: float) -> SetHealth:
    """The health numbers of a set of `images` learned from `real_images` with LR `lr` (from `lr_init`)."""
    real_std = float(real_images.float().std())
    return SetHealth(
        pixel_std_ratio=float(images.float().std()) / real_std if real_std > 0 else float("inf"),
        lr_ratio=lr / lr_init if lr_init > 0 else float("inf"),
    )
