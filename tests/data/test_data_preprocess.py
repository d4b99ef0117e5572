"""Preprocessor: normalisation, ZCA whitening (kornia/MTT maths), inverse, state round trip, chunking."""

from __future__ import annotations

import pytest
import torch

import satm_cl.data.preprocess as pp
from satm_cl.data import Preprocessor, create_dataset


def correlated_images(n: int, seed: int) -> torch.Tensor:
    """n images 2x3x3 with strongly correlated pixels, in roughly [0,1]."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(18, 18, generator=g)
    z = torch.randn(n, 18, generator=g) @ mix
    return (0.5 + 0.1 * z).reshape(n, 2, 3, 3)


def off_diagonal_energy(cov: torch.Tensor) -> float:
    return float((cov - torch.diag(torch.diag(cov))).norm() / cov.norm())


def test_normalise_only() -> None:
    x = correlated_images(50, 0)
    pre = Preprocessor.fit(x, (0.5, 0.4), (0.2, 0.1), zca=False)
    assert not pre.zca and pre.tensors() == {}
    out = pre.transform(x)
    assert torch.allclose(out[:, 0], (x[:, 0] - 0.5) / 0.2, atol=1e-6)
    assert torch.allclose(out[:, 1], (x[:, 1] - 0.4) / 0.1, atol=1e-6)
    assert torch.allclose(pre.inverse(out), x, atol=1e-6)


def test_zca_matches_kornia_formula_and_whitens() -> None:
    x = correlated_images(2000, 1)
    mean, std = (0.5, 0.5), (0.05, 0.05)  # small std: most eigenvalues well above eps
    pre = Preprocessor.fit(x, mean, std, zca=True, zca_eps=0.1)
    assert pre.zca
    flat = ((x - 0.5) / 0.05).reshape(len(x), -1).double()
    centred = flat - flat.mean(0)
    cov = centred.T @ centred / (len(x) - 1)
    s, u = torch.linalg.eigh(cov)
    w = u @ torch.diag((s + 0.1).rsqrt()) @ u.T
    assert pre.zca_matrix is not None
    assert torch.allclose(pre.zca_matrix.double(), w, atol=1e-5)
    z = pre.transform(x).reshape(len(x), -1).double()
    assert torch.allclose(z, centred @ w, atol=1e-4)
    # whitened covariance is U diag(S/(S+eps)) U^T: off-diagonal energy strongly reduced
    zc = z - z.mean(0)
    cov_z = zc.T @ zc / (len(x) - 1)
    expected = u @ torch.diag(s / (s + 0.1)) @ u.T
    assert torch.allclose(cov_z, expected, atol=1e-4)
    assert off_diagonal_energy(cov_z) < 0.2 * off_diagonal_energy(cov)


def test_zca_round_trip_on_digits() -> None:
    ds = create_dataset("digits")
    pre = Preprocessor.fit(ds.train.x, ds.mean, ds.std, zca=True)
    for split in (ds.train, ds.test):
        z = pre.transform(split.x)
        assert z.shape == split.x.shape and z.dtype == torch.float32
        assert torch.allclose(pre.inverse(z), split.x, atol=1e-4)


def test_state_round_trip() -> None:
    ds = create_dataset("digits")
    pre = Preprocessor.fit(ds.train.x, ds.mean, ds.std, zca=True)
    state = pre.tensors()
    assert set(state) == {"zca_mean", "zca_matrix"}
    assert state["zca_matrix"].shape == (64, 64) and state["zca_mean"].shape == (64,)
    again = Preprocessor.from_state(ds.mean, ds.std, {k: v.clone() for k, v in state.items()})
    x = ds.test.x[:100]
    assert torch.equal(again.transform(x), pre.transform(x))
    assert torch.allclose(again.inverse(pre.transform(x)), x, atol=1e-4)
    plain = Preprocessor.from_state(ds.mean, ds.std, {})
    assert not plain.zca and torch.allclose(plain.inverse(plain.transform(x)), x, atol=1e-6)


def test_chunked_equals_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    x = correlated_images(300, 2)
    full = Preprocessor.fit(x, (0.5, 0.5), (0.3, 0.3), zca=True)
    ref = full.transform(x)
    monkeypatch.setattr(pp, "CHUNK_ROWS", 7)
    chunked = Preprocessor.fit(x, (0.5, 0.5), (0.3, 0.3), zca=True)
    assert full.zca_matrix is not None and chunked.zca_matrix is not None
    assert torch.allclose(chunked.zca_matrix, full.zca_matrix, atol=1e-5)
    assert torch.allclose(chunked.transform(x), ref, atol=1e-5)
    assert torch.allclose(chunked.inverse(ref), x, atol=1e-4)


def test_transform_is_differentiable_and_device_aware() -> None:
    x = correlated_images(20, 3)
    pre = Preprocessor.fit(x, (0.5, 0.5), (0.3, 0.3), zca=True).to("cpu")
    syn = x[:4].clone().requires_grad_(True)
    pre.transform(syn).square().sum().backward()
    assert syn.grad is not None and torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0
    assert pre.transform(x.double()).dtype == torch.float64
