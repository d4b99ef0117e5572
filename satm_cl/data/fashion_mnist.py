"""Fashion-MNIST from the official idx .gz files (data dir, or Debian's dataset-fashion-mnist package)."""

from __future__ import annotations

import logging
from pathlib import Path

from satm_cl.data._common import finish, read_idx, to_labels, to_unit_images
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits
from satm_cl.errors import SatmError

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# Where Debian's `dataset-fashion-mnist` package installs the files (tests may override this).
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
log = logging.getLogger(__name__)
HINT = "apt-get install dataset-fashion-mnist, or pass --data-dir DIR holding the idx .gz files"


def candidate_dirs(options: DatasetOptions) -> list[Path]:
    """Directories searched in order: data_dir, data_dir/fashion-mnist, then the system location."""
    dirs: list[Path] = []
    if options.data_dir is not None:
        root = Path(options.data_dir).expanduser()
        dirs += [root, root / "fashion-mnist"]
    return dirs + list(SYSTEM_DIRS)


def _file_in(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_files(options: DatasetOptions) -> dict[str, Path] | None:
    """The four idx files from the first directory holding all of them, or None."""
    for directory in candidate_dirs(options):
        found = {key: _file_in(directory, stem) for key, stem in FILES.items()}
        if all(p is not None for p in found.values()):
            return {key: p for key, p in found.items() if p is not None}
    return None


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(options: DatasetOptions) -> DatasetSplits:
    """Fashion-MNIST as 1x28x28 images in [0,1], official train/test split, parsed with numpy."""
    files = find_files(options)
    if files is None:
        where = ", ".join(str(d) for d in candidate_dirs(options))
        raise SatmError(f"dataset fashion-mnist not found (looked in {where}); {HINT}")
    elsewhere = _passed_over(options, files)
    if elsewhere:
        log.warning("%s", elsewhere)  # a mistyped --data-dir that exists must not go unnoticed
    train_x = to_unit_images(read_idx(files["train_x"]), 255.0, layout="NHW")
    test_x = to_unit_images(read_idx(files["test_x"]), 255.0, layout="NHW")
    train_y, test_y = to_labels(read_idx(files["train_y"])), to_labels(read_idx(files["test_y"]))
    return finish("fashion-mnist", train_x, train_y, test_x, test_y, CLASS_NAMES, options)


def _passed_over(options: DatasetOptions, files: dict[str, Path]) -> str | None:
    """A note when --data-dir was given but the files came from the system location instead."""
    if options.data_dir is None:
        return None
    used = files["train_x"].parent
    if used in candidate_dirs(DatasetOptions(data_dir=options.data_dir))[:2]:
        return None
    return f"fashion-mnist is not in --data-dir {options.data_dir}; using {used}"


def _status(options: DatasetOptions) -> str:
    files = find_files(options)
    if files is None:
        return f"needs --data-dir ({HINT})"
    elsewhere = _passed_over(options, files)
    return "ready" if elsewhere is None else f"ready ({elsewhere})"


STATUS["fashion-mnist"] = _status
