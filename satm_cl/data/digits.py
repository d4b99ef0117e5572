"""The embedded default dataset: sklearn's 8x8 handwritten digits, with a fixed canonical split."""

from __future__ import annotations

import numpy as np
import torch

from satm_cl.data._common import finish, to_labels
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits

DIGITS_TEST_SIZE = 0.3
DIGITS_SPLIT_SEED = 0


def digits_train_test_indices() -> tuple[np.ndarray, np.ndarray]:
    """Indices into `load_digits()` order of the canonical train/test split (other tools rely on it)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(
        idx, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return np.asarray(train_idx), np.asarray(test_idx)


@DATASETS.register("digits")
def load_digits_dataset(options: DatasetOptions) -> DatasetSplits:
    """sklearn digits as 1x8x8 images in [0,1] (pixels / 16); 70/30 stratified split, random_state 0."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    y = to_labels(bunch.target)
    train_idx, test_idx = digits_train_test_indices()
    tr, te = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    names = [str(i) for i in range(10)]
    return finish("digits", x[tr], y[tr], x[te], y[te], names, options)


def _status(options: DatasetOptions) -> str:
    return "ready"


STATUS["digits"] = _status
