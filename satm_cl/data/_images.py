"""Read a list of image files with PIL into one uint8 array (a plain loop is fine: this is file I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from satm_cl.data._common import to_unit_images

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def list_images(directory: Path) -> list[Path]:
    """Image files directly inside `directory`, sorted by name for a stable order."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_images(paths: Sequence[Path], resolution: int) -> torch.Tensor:
    """Load RGB images, resize each to resolution x resolution (bilinear), stack once -> float32 [N,3,R,R]."""
    from PIL import Image

    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if rgb.size != (resolution, resolution):
                rgb = rgb.resize((resolution, resolution), Image.Resampling.BILINEAR)
            out[i] = np.asarray(rgb, dtype=np.uint8)
    return to_unit_images(out, 255.0, layout="NHWC")
