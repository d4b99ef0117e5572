"""DSA: determinism, siamese (same params -> same transform), gradients, modes, exact op semantics."""

from __future__ import annotations

import math

import pytest
import torch

from satm_cl.data import DSA, AugParams
from satm_cl.data.dsa import GROUPS
from satm_cl.errors import SatmError

SHAPE = (3, 16, 16)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_same_params_same_output_and_no_in_place() -> None:
    dsa = DSA()
    x = images()
    before = x.clone()
    p = dsa.sample(len(x), SHAPE, gen(0))
    a, b = dsa.apply(x, p), dsa.apply(x, p)
    assert torch.equal(a, b) and torch.equal(x, before)
    assert a.shape == x.shape


@pytest.mark.parametrize("group", ["crop", "cutout", "flip", "scale", "rotate"])
def test_siamese_geometric_ops_are_the_same_linear_map(group: str) -> None:
    """Same params on two batches = same per-sample transform: apply(x1 + x2) == apply(x1) + apply(x2)."""
    dsa = DSA(group, mode="all")
    x1, x2 = images(seed=1), images(seed=2)
    p = dsa.sample(len(x1), SHAPE, gen(3))
    assert torch.allclose(dsa.apply(x1 + x2, p), dsa.apply(x1, p) + dsa.apply(x2, p), atol=1e-5)


def test_determinism_with_seeded_generator() -> None:
    dsa = DSA(mode="all")
    x = images()
    assert torch.equal(dsa(x, gen(5)), dsa(x, gen(5)))
    p, q = dsa.sample(6, SHAPE, gen(5)), dsa.sample(6, SHAPE, gen(5))
    assert p.ops == q.ops and all(torch.equal(p.values[k], q.values[k]) for k in p.values)


def test_different_seeds_differ() -> None:
    x = images()
    assert not torch.equal(DSA(mode="all")(x, gen(1)), DSA(mode="all")(x, gen(2)))
    single = DSA()
    outs = [single(x, gen(s)) for s in range(6)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_gradient_flows_through_every_op(group: str) -> None:
    dsa = DSA(group, mode="all")
    x = images().requires_grad_(True)
    out = dsa(x, gen(7))
    assert out.shape == x.shape
    weights = torch.rand(out.shape, generator=gen(8))
    (out * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_modes_single_and_all() -> None:
    all_ops = tuple(op for g in ("color", "crop", "cutout", "flip", "scale", "rotate") for op in GROUPS[g])
    p = DSA(mode="all").sample(4, SHAPE, gen(0))
    assert p.ops == all_ops
    seen = set()
    for s in range(60):
        q = DSA().sample(4, SHAPE, gen(s))
        assert q.ops in {GROUPS[g] for g in ("color", "crop", "cutout", "flip", "scale", "rotate")}
        assert set(q.values) == set(q.ops)
        seen.add(q.ops)
    assert len(seen) == 6


def test_identity_strategies() -> None:
    x = images()
    for strategy in ("none", "None", ""):
        dsa = DSA(strategy)
        assert dsa.is_identity and torch.equal(dsa(x, gen(0)), x)


def test_unknown_op_and_mode() -> None:
    with pytest.raises(SatmError, match=r"unknown DSA op 'blur'; valid: color, .*rotate"):
        DSA("color_blur")
    with pytest.raises(SatmError, match="unknown DSA mode 'many'; valid: single, all"):
        DSA(mode="many")


def test_param_ranges() -> None:
    p = DSA(mode="all").sample(2000, SHAPE, gen(0))
    v = p.values
    assert v["brightness"].abs().max() <= 0.5 and v["saturation"].min() >= 0 and v["saturation"].max() <= 2
    assert v["contrast"].min() >= 0.5 and v["contrast"].max() <= 1.5
    assert v["crop"].abs().max() == 2  # int(16 * 0.125 + 0.5)
    assert v["scale"].min() >= 1 / 1.2 and v["scale"].max() <= 1.2
    assert v["rotate"].abs().max() <= math.radians(15)
    assert 0.4 < v["flip"].float().mean() < 0.6


def _params(op: str, value: torch.Tensor) -> AugParams:
    return AugParams(ops=(op,), n=int(value.shape[0]), image_shape=SHAPE, values={op: value})


def test_exact_semantics() -> None:
    dsa = DSA()
    x = images(2)
    assert torch.equal(
        dsa.apply(x, _params("flip", torch.tensor([True, False]))), torch.stack([x[0].flip(2), x[1]])
    )
    shifted = dsa.apply(x, _params("crop", torch.tensor([[1, -2], [0, 0]])))
    expected = torch.zeros_like(x[0])
    expected[:, :-1, 2:] = x[0, :, 1:, :-2]  # out[i, j] = x[i + 1, j - 2], zero outside
    assert torch.equal(shifted[0], expected) and torch.equal(shifted[1], x[1])
    cut = dsa.apply(x, _params("cutout", torch.tensor([[8, 8], [0, 0]])))
    assert int((cut[0, 0] == 0).sum()) == 64 and torch.equal(cut[0, :, 4:12, 4:12], torch.zeros(3, 8, 8))
    assert int((cut[1, 0] == 0).sum()) == 16  # clipped at the corner: rows/cols 0..3
    assert torch.allclose(dsa.apply(x, _params("rotate", torch.zeros(2))), x, atol=1e-5)
    assert torch.allclose(dsa.apply(x, _params("scale", torch.ones(2, 2))), x, atol=1e-5)
    assert torch.allclose(dsa.apply(x, _params("contrast", torch.ones(2))), x, atol=1e-6)
    bright = dsa.apply(x, _params("brightness", torch.tensor([0.25, -0.5])))
    assert torch.allclose(bright, x + torch.tensor([0.25, -0.5]).reshape(2, 1, 1, 1))
    grey = dsa.apply(x, _params("saturation", torch.zeros(2)))
    assert torch.allclose(grey, x.mean(dim=1, keepdim=True).expand_as(x), atol=1e-6)


def test_rotate_quarter_turn_matches_rot90() -> None:
    x = images(1)
    out = DSA().apply(x, _params("rotate", torch.tensor([math.pi / 2])))
    # a 90 degree rotation on a square grid with align_corners=True is an exact pixel permutation
    assert any(torch.allclose(out, torch.rot90(x, k, dims=(2, 3)), atol=1e-5) for k in (1, 3))


def test_params_shape_mismatch_and_device_move() -> None:
    dsa = DSA(mode="all")
    p = dsa.sample(4, SHAPE, gen(0))
    with pytest.raises(ValueError, match="AugParams drawn for 4"):
        dsa.apply(images(5), p)
    q = p.to("cpu")
    x = images(4)
    assert torch.equal(dsa.apply(x, p), dsa.apply(x, q))
