"""CIFAR-10 and CIFAR-100 via torchvision (root = data dir with cifar-10-batches-py / cifar-100-python)."""

from __future__ import annotations

from satm_cl.data._common import finish, require_data_dir, to_labels, to_unit_images
from satm_cl.data._torchvision import TORCHVISION_HINT, open_torchvision, torchvision_status
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits


def _load_cifar(name: str, hundred: bool, options: DatasetOptions) -> DatasetSplits:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR100 if hundred else CIFAR10
    root = require_data_dir(name, options, TORCHVISION_HINT)
    train = open_torchvision(name, root, options.download, lambda: cls(root, True, download=options.download))
    test = open_torchvision(name, root, options.download, lambda: cls(root, False, download=options.download))
    return finish(
        name,
        to_unit_images(train.data, 255.0, layout="NHWC"),
        to_labels(train.targets),
        to_unit_images(test.data, 255.0, layout="NHWC"),
        to_labels(test.targets),
        list(train.classes),
        options,
    )


@DATASETS.register("cifar10")
def load_cifar10(options: DatasetOptions) -> DatasetSplits:
    """CIFAR-10 50k/10k as 3x32x32 images in [0,1]."""
    return _load_cifar("cifar10", False, options)


@DATASETS.register("cifar100")
def load_cifar100(options: DatasetOptions) -> DatasetSplits:
    """CIFAR-100 (fine labels) 50k/10k as 3x32x32 images in [0,1]."""
    return _load_cifar("cifar100", True, options)


STATUS["cifar10"] = lambda options: torchvision_status("cifar10", options.data_dir, "cifar-10-batches-py")
STATUS["cifar100"] = lambda options: torchvision_status("cifar100", options.data_dir, "cifar-100-python")
