"""Corruption registry: determinism, range and shape, severity ordering, option resolution and the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from satm_cl.data import create_dataset
from satm_cl.data.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    blur_matrix,
    corrupt,
    corrupted_name,
    corrupted_test_set,
    list_corruptions,
    resolve_corruptions,
)
from satm_cl.errors import SatmError
from satm_cl.evaluate.suites import resample

EXPECTED = {
    "gaussian_noise",
    "shot_noise",
    "gaussian_blur",
    "contrast",
    "brightness",
    "rotation",
    "translation",
    "elastic",
    "pixelate",
}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """200 digits test images upsampled to 28×28 (Fashion-MNIST's size, without needing the dataset)."""
    x = create_dataset("digits").test.x[:200]
    return resample(x, (28, 28))


def test_registry_has_the_nine_corruptions_with_three_increasing_magnitudes() -> None:
    assert set(list_corruptions()) == EXPECTED
    for name in EXPECTED:
        mags = CORRUPTIONS.get(name).magnitudes
        assert len(mags) == len(SEVERITIES) == 3
        # shot noise (photon count), contrast (factor) and pixelate (kept fraction) shrink as severity grows
        shrinking = name in {"shot_noise", "contrast", "pixelate"}
        assert list(mags) == sorted(mags, reverse=shrinking) and len(set(mags)) == 3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_changes_images_keeps_range_shape_and_is_deterministic(name: str, images: torch.Tensor) -> None:
    a = corrupt(images, name, 2, seed=3)
    assert a.shape == images.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.allclose(a, images, atol=1e-2)
    assert torch.equal(a, corrupt(images, name, 2, seed=3))  # same seed, same bytes
    assert torch.equal(a * 255, torch.round(a * 255))  # stored as 8-bit values


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "rotation", "translation", "elastic"])
def test_random_corruptions_depend_on_the_seed(name: str, images: torch.Tensor) -> None:
    assert not torch.equal(corrupt(images, name, 2, seed=0), corrupt(images, name, 2, seed=1))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_severity_is_monotone_in_distance_to_clean(name: str, images: torch.Tensor) -> None:
    dist = [
        float((corrupt(images, name, s) - images).pow(2).sum((1, 2, 3)).sqrt().mean()) for s in SEVERITIES
    ]
    assert dist[0] < dist[1] < dist[2], dist


def test_contrast_and_brightness_match_their_formulas(images: torch.Tensor) -> None:
    x = images[:5]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    expect = torch.round(((x - mean) * 0.4 + mean).clamp(0, 1) * 255) / 255
    assert torch.allclose(corrupt(x, "contrast", 2), expect, atol=1e-6)
    expect = torch.round((x + 0.45).clamp(0, 1) * 255) / 255
    assert torch.allclose(corrupt(x, "brightness", 3), expect, atol=1e-6)


def test_blur_matrix_rows_sum_to_one_and_blur_keeps_a_constant_image() -> None:
    for n, sigma in ((8, 0.3), (28, 1.5), (4, 3.0)):
        assert torch.allclose(blur_matrix(n, sigma).sum(1), torch.ones(n), atol=1e-6)
    flat = torch.full((2, 1, 8, 8), 0.4)
    assert torch.allclose(corrupt(flat, "gaussian_blur", 3), torch.round(flat * 255) / 255)


def test_small_and_non_square_images_work() -> None:
    x = torch.rand(4, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    for name in EXPECTED:
        out = corrupt(x, name, 3)
        assert out.shape == x.shape and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


def test_bad_arguments_are_clear_errors(images: torch.Tensor) -> None:
    with pytest.raises(SatmError, match="unknown corruption 'fog'"):
        corrupt(images, "fog", 1)
    with pytest.raises(SatmError, match="severity"):
        corrupt(images, "contrast", 4)
    with pytest.raises(SatmError, match="N,C,H,W"):
        corrupt(images[0], "contrast", 1)


def test_resolve_corruptions_defaults_per_dataset() -> None:
    assert set(resolve_corruptions("fashion-mnist", None)) == EXPECTED
    assert resolve_corruptions("digits", None) == ()
    assert set(resolve_corruptions("digits", "all")) == EXPECTED
    assert resolve_corruptions("fashion-mnist", "none") == ()
    assert resolve_corruptions("digits", "rotation, contrast,rotation") == ("rotation", "contrast")
    with pytest.raises(SatmError, match="unknown corruption"):
        resolve_corruptions("digits", "rotation,fog")


def test_cache_is_written_once_and_reused(
    images: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, path = corrupted_test_set(images, "digits28", "elastic", 1, seed=0, cache=tmp_path)
    assert path.is_file() and path.parent == tmp_path / "corruptions" / "digits28"
    assert torch.equal(x, corrupt(images, "elastic", 1, seed=0))
    stamp = path.stat().st_mtime_ns

    def fail(*args: object, **kw: object) -> torch.Tensor:
        raise AssertionError("regenerated a cached corruption")

    monkeypatch.setattr("satm_cl.data.corruptions.corrupt", fail)
    again, same = corrupted_test_set(images, "digits28", "elastic", 1, seed=0, cache=tmp_path)
    assert same == path and torch.equal(again, x) and path.stat().st_mtime_ns == stamp
    monkeypatch.undo()
    # another seed, severity or image set is another file
    _, other_seed = corrupted_test_set(images, "digits28", "elastic", 1, seed=1, cache=tmp_path)
    _, other_images = corrupted_test_set(images[:50], "digits28", "elastic", 1, seed=0, cache=tmp_path)
    assert len({path, other_seed, other_images}) == 3
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_corrupted_name_format() -> None:
    assert corrupted_name("fashion-mnist", "gaussian_noise", 2) == "fashion-mnist-C/gaussian_noise/2"
