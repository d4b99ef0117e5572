"""Full MNIST through torchvision (root = data dir, files under MNIST/raw/)."""

from __future__ import annotations

from satm_cl.data._common import finish, require_data_dir, to_labels, to_unit_images
from satm_cl.data._torchvision import TORCHVISION_HINT, open_torchvision, torchvision_status
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits

MARKER = "MNIST/raw/train-images-idx3-ubyte"


@DATASETS.register("mnist")
def load_mnist(options: DatasetOptions) -> DatasetSplits:
    """MNIST 60k/10k as 1x28x28 images in [0,1], converted from torchvision's uint8 tensors at once."""
    from torchvision.datasets import MNIST

    root = require_data_dir("mnist", options, TORCHVISION_HINT)
    train = open_torchvision(
        "mnist", root, options.download, lambda: MNIST(root, True, download=options.download)
    )
    test = open_torchvision(
        "mnist", root, options.download, lambda: MNIST(root, False, download=options.download)
    )
    names = [str(i) for i in range(10)]
    return finish(
        "mnist",
        to_unit_images(train.data, 255.0, layout="NHW"),
        to_labels(train.targets),
        to_unit_images(test.data, 255.0, layout="NHW"),
        to_labels(test.targets),
        names,
        options,
    )


STATUS["mnist"] = lambda options: torchvision_status("mnist", options.data_dir, MARKER)
