"""Correctness of the hypergradient variants (TUH, closed-form LR, SATM ≡ MTT at ρ = 0)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _tiny import tiny_config

from satm_cl.condense.engine import Condenser
from satm_cl.condense.hypergrad import InnerPlan, sample_plan
from satm_cl.data import create_dataset
from satm_cl.experts.train import prepare, train_experts
from satm_cl.models import functional_forward


def _setup(cache_root: Path, tmp_path: Path, **overrides: object) -> Condenser:
    cfg = tiny_config(**overrides)
    store = train_experts(cfg.expert, cache_root, torch.device("cpu"), progress=False)
    data = prepare(create_dataset("digits"), False, torch.device("cpu"))
    return Condenser(cfg, store, data, torch.device("cpu"), tmp_path / "out")


def _segment(c: Condenser, steps: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, InnerPlan]:
    theta0, target = c.store.load_epochs(0, [1, 3])
    plan = sample_plan(c.labels.numel(), (1, 8, 8), steps, None, c.dsa, torch.Generator().manual_seed(seed))
    return theta0, target, plan


def _reference(
    c: Condenser,
    x: torch.Tensor,
    lr: torch.Tensor,
    theta0: torch.Tensor,
    target: torch.Tensor,
    plan: InnerPlan,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain full unroll written independently of the Unroller (no prefix, no truncation)."""
    x = x.detach().requires_grad_(True)
    lr = lr.detach().requires_grad_(True)
    theta = theta0.detach().requires_grad_(True)
    for idx, aug in zip(plan.batches, plan.augs, strict=True):
        xb = c.dsa.apply(x[idx], aug) if aug is not None else x[idx]
        loss = F.cross_entropy(functional_forward(c.model, c.layout, theta, xb), c.labels[idx])
        (g,) = torch.autograd.grad(loss, theta, create_graph=True)
        theta = theta - lr * g
    match = (theta - target).pow(2).sum() / (theta0 - target).pow(2).sum()
    gx, glr = torch.autograd.grad(match, [x, lr])
    return gx, glr


def test_tuh_with_all_steps_equals_full_unroll(cache_root: Path, tmp_path: Path) -> None:
    c = _setup(cache_root, tmp_path)
    st = c.fresh_state()
    theta0, target, plan = _segment(c, 6)
    ref_x, ref_lr = _reference(c, st.x, st.lr, theta0, target, plan)
    for keep in (None, 6, 99):
        res = c.unroller.hypergradient(
            st.x, c.labels, st.lr, theta0, target, plan, keep=keep, lr_grad="autograd"
        )
        torch.testing.assert_close(res.grad_x, ref_x, rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(res.grad_lr, ref_lr, rtol=1e-5, atol=1e-9)


def test_full_hypergradient_matches_finite_differences(cache_root: Path, tmp_path: Path) -> None:
    """Independent of autograd: a central difference along a random direction, in float64."""
    c = _setup(cache_root, tmp_path)
    c.model.double()
    st = c.fresh_state()
    x, lr = st.x.double(), st.lr.double()
    theta0, target, plan = _segment(c, 4)
    theta0, target = theta0.double(), target.double()
    res = c.unroller.hypergradient(x, c.labels, lr, theta0, target, plan, lr_grad="autograd")
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = 1e-6  # the matching loss is sharply curved; 1e-4 is already outside its linear range

    def loss_at(xx: torch.Tensor) -> float:
        return float(c.unroller.hypergradient(xx, c.labels, lr, theta0, target, plan).loss)

    numeric = (loss_at(x + h * v) - loss_at(x - h * v)) / (2 * h)
    analytic = float((res.grad_x * v).sum())
    assert abs(numeric - analytic) <= 1e-4 * max(1e-3, abs(analytic)), (numeric, analytic)


def test_truncated_hypergradient_stays_aligned(cache_root: Path, tmp_path: Path, capsys: object) -> None:
    """K < N: the cosine to the exact hypergradient is printed and must exceed 0.5 at K = N/2.

    The paper's Proposition bounds the truncation error by a factor that shrinks geometrically
    with the kept steps when the inner loss is locally strongly convex and α ≤ 1/K-smooth; on
    digits experts we measured cosines of 0.81-0.97 at K = N/2 (N = 20, 40), so 0.5 leaves room
    for seed noise while still failing if truncation dropped the wrong steps (cos ≈ 0 or < 0).
    """
    c = _setup(cache_root, tmp_path)
    st = c.fresh_state()
    theta0, target, plan = _segment(c, 12)
    exact = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan).grad_x.flatten()
    cosines = {}
    for keep in (1, 3, 6, 9):
        approx = c.unroller.hypergradient(
            st.x, c.labels, st.lr, theta0, target, plan, keep=keep
        ).grad_x.flatten()
        cosines[keep] = float(F.cosine_similarity(approx, exact, dim=0))
    print("cosine to exact hypergradient by kept steps (N=12):", cosines)
    assert cosines[6] > 0.5
    assert cosines[9] > 0.5


def test_closed_form_lr_gradient_equals_autograd_for_one_step(cache_root: Path, tmp_path: Path) -> None:
    """With N = 1 the inner gradient does not depend on α, so −(∂L/∂θ_N)·Σg is exact."""
    c = _setup(cache_root, tmp_path)
    st = c.fresh_state()
    theta0, target, plan = _segment(c, 1)
    auto = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan, lr_grad="autograd")
    closed = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan, lr_grad="closed_form")
    torch.testing.assert_close(closed.grad_lr, auto.grad_lr, rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(closed.grad_x, auto.grad_x)


def test_closed_form_lr_gradient_is_first_order_close(cache_root: Path, tmp_path: Path) -> None:
    """For N > 1 they differ by second-order terms only: same sign, and the same order of magnitude."""
    c = _setup(cache_root, tmp_path)
    st = c.fresh_state()
    theta0, target, plan = _segment(c, 6)
    auto = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan, lr_grad="autograd").grad_lr
    closed = c.unroller.hypergradient(
        st.x, c.labels, st.lr, theta0, target, plan, lr_grad="closed_form"
    ).grad_lr
    assert torch.sign(auto) == torch.sign(closed)
    assert 0.2 < float(closed / auto) < 5.0


def test_trajectory_reuse_recomputes_only_the_tail(cache_root: Path, tmp_path: Path) -> None:
    """TR: the descent pass at X + ε reuses the head computed at X; it equals a pass whose head is
    computed at X explicitly, and differs from recomputing the head at X + ε."""
    c = _setup(cache_root, tmp_path)
    st = c.fresh_state()
    theta0, target, plan = _segment(c, 6)
    first = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan, keep=2)
    assert first.prefix.steps == 4
    eps = 0.5 * first.grad_x / first.grad_x.norm()
    reused = c.unroller.hypergradient(
        st.x + eps, c.labels, st.lr, theta0, target, plan, keep=2, prefix=first.prefix
    )
    head_at_x = c.unroller.prefix(st.x, c.labels, st.lr, theta0, plan, 4)
    explicit = c.unroller.hypergradient(
        st.x + eps, c.labels, st.lr, theta0, target, plan, keep=2, prefix=head_at_x
    )
    fresh = c.unroller.hypergradient(st.x + eps, c.labels, st.lr, theta0, target, plan, keep=2)
    assert torch.equal(reused.grad_x, explicit.grad_x)
    assert not torch.equal(reused.grad_x, fresh.grad_x)


def test_engine_computes_the_head_once_per_step_under_tr(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {}
    for reuse in (True, False):
        c = _setup(cache_root, tmp_path, reuse_trajectory=reuse, smooth_samples=2, smooth_sigma=0.01)
        calls: list[int] = []

        def counting(*a: object, _real=c.unroller.prefix, _calls=calls, **k: object) -> object:
            _calls.append(1)
            return _real(*a, **k)

        monkeypatch.setattr(c.unroller, "prefix", counting)
        c.step(c.fresh_state())
        counts[reuse] = len(calls)
    assert counts == {True: 1, False: 4}  # ascent + 2 smoothing passes + descent without TR


def test_sam_and_asam_perturbations_have_radius_rho() -> None:
    from satm_cl.condense.minimizers import create_minimizer

    gen = torch.Generator().manual_seed(0)
    x, g = torch.randn(10, 1, 8, 8, generator=gen), torch.randn(10, 1, 8, 8, generator=gen)
    sam = create_minimizer("sam", 0.3).perturb(x, g)
    assert sam is not None and float(sam.norm()) == pytest.approx(0.3)
    asam = create_minimizer("asam", 0.3).perturb(x, g)
    t = x.abs() + 0.01
    assert asam is not None and float((asam / t).norm()) == pytest.approx(0.3)
    assert create_minimizer("none", 0.3).perturb(x, g) is None


def test_autograd_lr_gradient_sees_the_truncated_head(cache_root: Path, tmp_path: Path) -> None:
    """With K < N the autograd α-gradient includes the head's first-order term −Σg_head: it moves
    close to the exact value (same sign, error smaller than the value itself)."""
    c = _setup(cache_root, tmp_path)
    st = c.fresh_state()
    theta0, target, plan = _segment(c, 6)
    exact = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan, lr_grad="autograd").grad_lr
    trunc = c.unroller.hypergradient(st.x, c.labels, st.lr, theta0, target, plan, keep=2, lr_grad="autograd")
    assert torch.sign(trunc.grad_lr) == torch.sign(exact)
    assert abs(float(trunc.grad_lr - exact)) < abs(float(exact))


def _run_steps(c: Condenser, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    st = c.fresh_state()
    for _ in range(n):
        c.step(st)
    return st.x, st.lr


def test_satm_with_zero_rho_is_exactly_mtt(cache_root: Path, tmp_path: Path) -> None:
    mtt = _setup(cache_root, tmp_path, method="mtt")
    satm = _setup(
        cache_root,
        tmp_path,
        method="satm",
        rho=0.0,
        truncate=None,
        reuse_trajectory=False,
        smooth_samples=0,
        lr_grad="autograd",
    )
    x_m, lr_m = _run_steps(mtt, 3)
    x_s, lr_s = _run_steps(satm, 3)
    assert torch.equal(x_m, x_s)
    assert torch.equal(lr_m, lr_s)


def test_satm_with_positive_rho_differs_from_mtt(cache_root: Path, tmp_path: Path) -> None:
    mtt = _setup(cache_root, tmp_path, method="mtt")
    satm = _setup(
        cache_root,
        tmp_path,
        method="satm",
        rho=0.5,
        truncate=None,
        reuse_trajectory=False,
        lr_grad="autograd",
    )
    assert not torch.equal(_run_steps(mtt, 2)[0], _run_steps(satm, 2)[0])


def test_learned_lr_stays_positive(cache_root: Path, tmp_path: Path) -> None:
    """A huge positive α-gradient would drive α negative; the projection keeps it at lr_floor."""
    c = _setup(cache_root, tmp_path, lr_floor=1e-4)
    real = c.hypergradients

    def push_down(st: object) -> tuple:
        res, gx, _ = real(st)  # type: ignore[arg-type]
        return res, gx, torch.tensor(1e9)

    c.hypergradients = push_down  # type: ignore[method-assign]
    st = c.fresh_state()
    c.step(st)
    assert float(st.lr) == pytest.approx(1e-4)


def test_asam_and_smoothing_run(cache_root: Path, tmp_path: Path) -> None:
    c = _setup(cache_root, tmp_path, minimizer="asam", rho=0.1, smooth_samples=2, smooth_sigma=0.01)
    st = c.fresh_state()
    row = c.step(st)
    assert row["loss"] > 0 and torch.isfinite(st.x).all()


def test_config_rejects_reuse_without_truncated_descent() -> None:
    from satm_cl.errors import SatmError

    with pytest.raises(SatmError, match="reuse_trajectory"):
        replace(tiny_config(), reuse_trajectory=True, truncate_descent=False)


def test_bf16_unroll_stays_aligned_with_the_fp32_hypergradient(cache_root: Path, tmp_path: Path) -> None:
    """The bf16 inner unroll (forward passes under autocast) approximates, not equals, the fp32 one."""
    c32 = _setup(cache_root, tmp_path / "a")
    c16 = _setup(cache_root, tmp_path / "b", precision="bf16")
    st = c32.fresh_state()
    theta0, target, plan = _segment(c32, 6)
    r32 = c32.unroller.hypergradient(st.x, c32.labels, st.lr, theta0, target, plan, lr_grad="autograd")
    r16 = c16.unroller.hypergradient(st.x, c16.labels, st.lr, theta0, target, plan, lr_grad="autograd")
    assert not torch.equal(r32.grad_x, r16.grad_x)
    cos = F.cosine_similarity(r32.grad_x.flatten(), r16.grad_x.flatten(), dim=0)
    assert cos > 0.98, float(cos)
    assert r16.grad_x.dtype == torch.float32 and torch.sign(r16.grad_lr) == torch.sign(r32.grad_lr)
