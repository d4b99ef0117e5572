"""Tiny ImageNet (tiny-imagenet-200 layout): 200 classes of 64x64 images; its labelled val set is our test."""

from __future__ import annotations

from pathlib import Path

from satm_cl.data._common import finish, require_data_dir, to_labels
from satm_cl.data._images import list_images, read_images
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits
from satm_cl.errors import SatmError

HINT = "unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip there"
DEFAULT_RESOLUTION = 64


def find_root(data_dir: Path | None) -> Path | None:
    """The tiny-imagenet-200 folder (data_dir or data_dir/tiny-imagenet-200) holding train/ and val/."""
    if data_dir is None:
        return None
    base = Path(data_dir).expanduser()
    for root in (base, base / "tiny-imagenet-200"):
        if (root / "train").is_dir() and (root / "val" / "val_annotations.txt").is_file():
            return root
    return None


def _class_names(root: Path, wnids: list[str]) -> list[str]:
    words = root / "words.txt"
    if not words.is_file():
        return wnids
    table: dict[str, str] = {}
    for line in words.read_text(encoding="utf-8").splitlines():
        wnid, _, text = line.partition("\t")
        table[wnid.strip()] = text.split(",")[0].strip()
    return [table.get(w) or w for w in wnids]


@DATASETS.register("tinyimagenet")
def load_tinyimagenet(options: DatasetOptions) -> DatasetSplits:
    """train/<wnid>/images/*.JPEG as train, val/images + val_annotations.txt as test; 3x64x64 in [0,1]."""
    root = find_root(require_data_dir("tinyimagenet", options, HINT))
    if root is None:
        raise SatmError(
            f"dataset tinyimagenet not found under {options.data_dir}; pass --data-dir DIR ({HINT})"
        )
    wnids_file = root / "wnids.txt"
    if wnids_file.is_file():
        wnids = [w.strip() for w in wnids_file.read_text(encoding="utf-8").split() if w.strip()]
    else:
        wnids = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    index = {w: i for i, w in enumerate(wnids)}

    train_paths: list[Path] = []
    train_labels: list[int] = []
    for wnid in wnids:
        files = list_images(root / "train" / wnid / "images")
        train_paths += files
        train_labels += [index[wnid]] * len(files)

    test_paths: list[Path] = []
    test_labels: list[int] = []
    for line in (root / "val" / "val_annotations.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in index:
            test_paths.append(root / "val" / "images" / parts[0])
            test_labels.append(index[parts[1]])
    if not train_paths or not test_paths:
        raise SatmError(f"dataset tinyimagenet under {root} has no images; pass --data-dir DIR ({HINT})")

    res = options.resolution or DEFAULT_RESOLUTION
    return finish(
        "tinyimagenet",
        read_images(train_paths, res),
        to_labels(train_labels),
        read_images(test_paths, res),
        to_labels(test_labels),
        _class_names(root, wnids),
        options,
    )


def _status(options: DatasetOptions) -> str:
    return "ready" if find_root(options.data_dir) is not None else f"needs --data-dir ({HINT})"


STATUS["tinyimagenet"] = _status
