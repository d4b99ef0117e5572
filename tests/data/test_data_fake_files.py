"""Every file-based loader on tiny fake datasets written in the real on-disk formats (never downloads).

torchvision verifies CIFAR / SVHN files against the MD5 sums of the real archives; our fakes cannot match
them, so those tests monkeypatch torchvision's integrity check to accept the fake files.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from satm_cl.data import DatasetSplits, create_dataset, dataset_status
from satm_cl.data import fashion_mnist as fm
from satm_cl.data.imagenet_subsets import SUBSETS
from satm_cl.errors import SatmError


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in idx format (MNIST's): magic 0,0,0x08,ndim then big-endian dims."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def fake_digits(n: int, side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n random uint8 images (unique with overwhelming probability) with labels cycling over 10 classes."""
    return rng.integers(0, 256, size=(n, side, side), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def check(
    ds: DatasetSplits, shape: tuple[int, int, int], num_classes: int, n_train_val: int, n_test: int
) -> None:
    """Contract checks plus disjointness of image rows across splits."""
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == shape
        assert float(split.x.min()) >= 0.0 and float(split.x.max()) <= 1.0
    assert ds.num_classes == num_classes and ds.image_shape == shape
    assert len(ds.train) + len(ds.val) == n_train_val and len(ds.test) == n_test
    assert set(ds.val.y.tolist()) == set(ds.train.y.tolist())
    rows = [{r.numpy().tobytes() for r in s.x.reshape(len(s), -1)} for s in (ds.train, ds.val, ds.test)]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]


def assert_same(a: DatasetSplits, b: DatasetSplits) -> None:
    for sa, sb in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)


# ---------------------------------------------------------------- fashion-mnist (idx .gz, numpy parser)


def test_fashion_mnist_tiny_idx_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "SYSTEM_DIRS", ())
    rng = np.random.default_rng(0)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    tr_x, tr_y = fake_digits(100, 28, rng)
    te_x, te_y = fake_digits(20, 28, rng)
    for stem, arr in (
        ("train-images-idx3-ubyte", tr_x),
        ("train-labels-idx1-ubyte", tr_y),
        ("t10k-images-idx3-ubyte", te_x),
        ("t10k-labels-idx1-ubyte", te_y),
    ):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    ds = create_dataset("fashion-mnist", data_dir=tmp_path)
    check(ds, (1, 28, 28), 10, 100, 20)
    assert torch.equal(ds.test.x[:, 0], torch.from_numpy(te_x).float() / 255)
    assert ds.test.y.tolist() == te_y.tolist()
    assert ds.class_names[0] == "T-shirt/top"
    assert_same(ds, create_dataset("fashion-mnist", data_dir=tmp_path))
    assert dataset_status("fashion-mnist", tmp_path) == "ready"


# ---------------------------------------------------------------- torchvision: MNIST


def test_mnist_raw_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    tr_x, tr_y = fake_digits(100, 28, rng)
    te_x, te_y = fake_digits(20, 28, rng)
    (raw / "train-images-idx3-ubyte").write_bytes(idx_bytes(tr_x))
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(tr_y))
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(te_x))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(te_y))
    assert dataset_status("mnist", tmp_path) == "ready"
    ds = create_dataset("mnist", data_dir=tmp_path)
    check(ds, (1, 28, 28), 10, 100, 20)
    assert torch.equal(ds.test.x[:, 0], torch.from_numpy(te_x).float() / 255)
    assert_same(ds, create_dataset("mnist", data_dir=tmp_path))


# ---------------------------------------------------------------- torchvision: CIFAR-10 / CIFAR-100


@pytest.fixture
def accept_fake_cifar(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision checks the CIFAR pickles' MD5 against the real archive; accept our fakes instead."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)


def _cifar_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj))


@pytest.mark.usefixtures("accept_fake_cifar")
def test_cifar10_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", {"data": _cifar_rows(20, rng), "labels": list(range(10)) * 2})
    test_rows = _cifar_rows(10, rng)
    _dump(folder / "test_batch", {"data": test_rows, "labels": list(range(10))})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {"label_names": names})
    assert dataset_status("cifar10", tmp_path) == "ready"
    ds = create_dataset("cifar10", data_dir=tmp_path)
    check(ds, (3, 32, 32), 10, 100, 10)
    assert ds.class_names == tuple(names)
    # CHW layout preserved: row = R plane, G plane, B plane
    assert torch.equal(ds.test.x[3], torch.from_numpy(test_rows[3].reshape(3, 32, 32)).float() / 255)
    assert_same(ds, create_dataset("cifar10", data_dir=tmp_path))


@pytest.mark.usefixtures("accept_fake_cifar")
def test_cifar100_pickles(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    labels = [i % 5 for i in range(50)]  # five of the hundred classes present
    _dump(folder / "train", {"data": _cifar_rows(50, rng), "fine_labels": labels, "coarse_labels": labels})
    _dump(
        folder / "test",
        {"data": _cifar_rows(10, rng), "fine_labels": labels[:10], "coarse_labels": labels[:10]},
    )
    _dump(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)]})
    ds = create_dataset("cifar100", data_dir=tmp_path)
    check(ds, (3, 32, 32), 100, 50, 10)
    assert ds.class_names[99] == "class99"


# ---------------------------------------------------------------- torchvision: SVHN


def test_svhn_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.io
    import torchvision.datasets as tvd

    # torchvision checks the .mat MD5 against the real download; accept the fake files.
    monkeypatch.setattr(tvd.SVHN, "_check_integrity", lambda self: True)
    rng = np.random.default_rng(4)
    for name, n in (("train", 100), ("test", 20)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # SVHN's H, W, C, N layout
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # labels 1..10, 10 meaning digit 0
        scipy.io.savemat(tmp_path / f"{name}_32x32.mat", {"X": x, "y": y})
        if name == "test":
            test_x, test_y = x, y
    assert dataset_status("svhn", tmp_path) == "ready"
    ds = create_dataset("svhn", data_dir=tmp_path)
    check(ds, (3, 32, 32), 10, 100, 20)
    assert ds.test.y.tolist() == [int(v) % 10 for v in test_y[:, 0]]
    assert torch.equal(
        ds.test.x[5], torch.from_numpy(test_x[:, :, :, 5].transpose(2, 0, 1).copy()).float() / 255
    )


# ---------------------------------------------------------------- Tiny ImageNet and ImageNet subsets (JPEG)


def _jpeg(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = rng.integers(0, 256, size=3, dtype=np.uint8)
    arr = np.broadcast_to(colour, (size[1], size[0], 3)).copy()
    arr[: size[1] // 2] = rng.integers(0, 256, size=3, dtype=np.uint8)
    img = Image.fromarray(arr)
    (img.convert("L") if mode == "L" else img).save(path, format="JPEG", quality=95)


def test_tinyimagenet_layout(tmp_path: Path) -> None:
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819", "n01641577"]
    root.mkdir()
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text(
        "n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n"
    )
    seed = 0
    for w in wnids:
        for i in range(10):
            _jpeg(root / "train" / w / "images" / f"{w}_{i}.JPEG", (64, 64), seed)
            seed += 1
    lines = []
    for i in range(6):
        _jpeg(root / "val" / "images" / f"val_{i}.JPEG", (64, 64), 1000 + i)
        lines.append(f"val_{i}.JPEG\t{wnids[i % 3]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    assert dataset_status("tinyimagenet", tmp_path) == "ready"
    ds = create_dataset("tinyimagenet", data_dir=tmp_path)
    check(ds, (3, 64, 64), 3, 30, 6)
    assert ds.class_names == ("goldfish", "European fire salamander", "n01641577")
    assert ds.test.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert_same(ds, create_dataset("tinyimagenet", data_dir=root))
    small = create_dataset("tinyimagenet", data_dir=tmp_path, resolution=32)
    assert small.image_shape == (3, 32, 32)


def test_imagenette_folder_keeps_only_subset_wnids(tmp_path: Path) -> None:
    wnids = [w for w, _ in SUBSETS["imagenette"]]
    seed = 0
    for w in [*wnids, "n09999999"]:
        for i in range(10):
            _jpeg(tmp_path / "train" / w / f"{w}_{i}.JPEG", (24, 20), seed, mode="L" if i == 0 else "RGB")
            seed += 1
        for i in range(2):
            _jpeg(tmp_path / "val" / w / f"ILSVRC_val_{w}_{i}.JPEG", (30, 18), seed)
            seed += 1
    assert dataset_status("imagenette", tmp_path) == "ready"
    assert dataset_status("imagewoof", tmp_path).startswith("needs --data-dir")
    ds = create_dataset("imagenette", data_dir=tmp_path, resolution=16)
    check(ds, (3, 16, 16), 10, 100, 20)
    assert ds.class_names[2] == "cassette player"
    assert sorted(ds.test.y.tolist()) == sorted(list(range(10)) * 2)
    assert_same(ds, create_dataset("imagenette", data_dir=tmp_path, resolution=16))


def test_imagenet_subset_in_named_subfolder(tmp_path: Path) -> None:
    wnids = [w for w, _ in SUBSETS["imagemeow"]]
    for k, w in enumerate(wnids):
        for i in range(10):
            _jpeg(tmp_path / "imagemeow" / "train" / w / f"{i}.jpg", (12, 12), 100 * k + i)
        _jpeg(tmp_path / "imagemeow" / "val" / w / "0.jpg", (12, 12), 100 * k + 50)
    ds = create_dataset("imagemeow", data_dir=tmp_path, resolution=8)
    assert ds.image_shape == (3, 8, 8) and len(ds.test) == 10


def test_subset_lists_are_ten_distinct_wnids() -> None:
    assert set(SUBSETS) == {
        "imagenette",
        "imagewoof",
        "imagefruit",
        "imageyellow",
        "imagemeow",
        "imagesquawk",
    }
    for pairs in SUBSETS.values():
        wnids = [w for w, _ in pairs]
        assert len(set(wnids)) == 10 and all(w.startswith("n") and len(w) == 9 for w in wnids)


# ---------------------------------------------------------------- missing data


@pytest.mark.parametrize(
    "name", ["mnist", "cifar10", "cifar100", "svhn", "tinyimagenet", "imagenette", "imagewoof", "imagesquawk"]
)
def test_missing_data_dir_is_a_one_line_user_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(SatmError, match="--data-dir") as info:
        create_dataset(name)
    assert "\n" not in str(info.value)
    with pytest.raises(
        SatmError, match=f"dataset {name} not found under {tmp_path}; pass --data-dir DIR"
    ) as info:
        create_dataset(name, data_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert dataset_status(name, tmp_path).startswith("needs --data-dir (")


def test_torchvision_hint_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(SatmError, match=r"`satm-cl download NAME --data-dir DIR` on a machine with internet"):
        create_dataset("cifar10", data_dir=tmp_path)
    assert "`satm-cl download cifar10 --data-dir DIR`" in dataset_status("cifar10", tmp_path)
