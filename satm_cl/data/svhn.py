"""SVHN (train/test, without 'extra') through torchvision (root = data dir holding the .mat files)."""

from __future__ import annotations

from satm_cl.data._common import finish, require_data_dir, to_labels, to_unit_images
from satm_cl.data._torchvision import TORCHVISION_HINT, open_torchvision, torchvision_status
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits


@DATASETS.register("svhn")
def load_svhn(options: DatasetOptions) -> DatasetSplits:
    """SVHN as 3x32x32 images in [0,1]; torchvision already maps label 10 to digit 0."""
    from torchvision.datasets import SVHN

    root = require_data_dir("svhn", options, TORCHVISION_HINT)
    train = open_torchvision(
        "svhn", root, options.download, lambda: SVHN(root, "train", download=options.download)
    )
    test = open_torchvision(
        "svhn", root, options.download, lambda: SVHN(root, "test", download=options.download)
    )
    names = [str(i) for i in range(10)]
    return finish(
        "svhn",
        to_unit_images(train.data, 255.0, layout="NCHW"),
        to_labels(train.labels),
        to_unit_images(test.data, 255.0, layout="NCHW"),
        to_labels(test.labels),
        names,
        options,
    )


STATUS["svhn"] = lambda options: torchvision_status("svhn", options.data_dir, "train_32x32.mat")
