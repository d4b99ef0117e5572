"""The training loop: stacked runs train exactly as the same runs one after another."""

from __future__ import annotations

import torch

from satm_cl.models import create_model
from satm_cl.seeding import make_generator
from satm_cl.training import TrainConfig, accuracy, prefer_stacked, score_batch_size, train_model, train_runs


def _data(n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.arange(10).repeat_interleave(n // 10)


def _models(runs: int = 3) -> list[torch.nn.Module]:
    return [create_model("convnet", 1, 10, (8, 8), seed=100 + r, width=8, depth=2) for r in range(runs)]


def test_stacked_runs_match_sequential_runs() -> None:
    x, y = _data()
    cfg = TrainConfig(epochs=6, lr=0.01, batch_size=8, dsa="color_crop_scale_rotate", decay_at=0.5)
    seeds = [3, 4, 5]
    seq = train_runs(_models(), x, y, cfg, seeds, stacked=False)
    stk = train_runs(_models(), x, y, cfg, seeds, stacked=True)
    assert seq.stacked is None and stk.stacked is not None
    width = 8
    for r, model in enumerate(seq.models):  # same batches, same augmentations, same SGD steps
        block = stk.stacked.features[0].weight[r * width : (r + 1) * width]
        torch.testing.assert_close(block, model.features[0].weight, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(stk.stacked.weight[r], model.classifier.weight, rtol=1e-4, atol=1e-5)
    test_x, test_y = _data(40)
    assert stk.accuracy(test_x, test_y) == seq.accuracy(test_x, test_y)


def test_one_sequential_run_is_train_model_with_its_generator() -> None:
    x, y = _data()
    cfg = TrainConfig(epochs=2, lr=0.01, batch_size=8, dsa="none")
    ref = _models(1)[0]
    train_model(ref, x, y, cfg, make_generator(7, "train-and-test"))
    run = train_runs(_models(1), x, y, cfg, [7]).models[0]
    for a, b in zip(ref.parameters(), run.parameters(), strict=True):
        assert torch.equal(a, b)


def test_prefer_stacked_only_for_small_sets_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert prefer_stacked(cpu, torch.zeros(10, 1, 8, 8))
    assert not prefer_stacked(cpu, torch.zeros(100, 1, 28, 28))
    assert prefer_stacked(torch.device("cuda"), torch.zeros(100, 1, 28, 28))


def test_cache_sized_scoring_batches_give_the_same_accuracy() -> None:
    """Scoring in cache-sized batches (the CPU default) must not change a single prediction."""
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(600, 1, 28, 28, generator=gen), torch.randint(0, 10, (600,), generator=gen)
    assert 16 <= score_batch_size(x) <= 64  # a Fashion-MNIST-sized image: a few dozen per batch
    assert score_batch_size(x, copies=5) < score_batch_size(x)  # stacked runs share the budget
    assert score_batch_size(x[:, :, :8, :8]) >= 256  # digits-sized: hundreds
    model = create_model("convnet", 1, 10, (28, 28), seed=3, width=16, depth=3)
    with torch.no_grad():
        logits = model.eval()(x)
    reference = 100.0 * int((logits.argmax(1) == y).sum()) / 600
    assert accuracy(model, x, y) == accuracy(model, x, y, batch_size=600) == reference
    runs = train_runs(
        [create_model("convnet", 1, 10, (28, 28), seed=s, width=16, depth=3) for s in (4, 5)],
        x[:20], y[:20], TrainConfig(epochs=1, lr=0.01, batch_size=10, dsa="none"), [0, 1], stacked=True,
    )
    assert runs.accuracy(x, y) == runs.accuracy(x, y, batch_size=600)


def test_bf16_precision_trains_in_bfloat16_and_keeps_fp32_parameters() -> None:
    """bf16 autocasts the forward pass only: parameters stay fp32, the result differs from fp32 but
    still learns, and the default (fp32) is untouched by the option's existence."""
    x, y = _data(40)
    runs = {}
    for precision in ("fp32", "bf16"):
        model = _models(1)[0]
        cfg = TrainConfig(epochs=30, lr=0.05, batch_size=20, dsa="none", precision=precision)
        runs[precision] = train_model(model, x, y, cfg, make_generator(3, "train"))
    w32, w16 = runs["fp32"].classifier.weight, runs["bf16"].classifier.weight
    assert w16.dtype == torch.float32 and torch.isfinite(w16).all()
    assert not torch.equal(w32, w16)  # the bf16 forward really ran in another precision
    assert accuracy(runs["bf16"], x, y) >= 90.0  # and still fits the 40 training images


def test_unknown_precision_is_a_one_line_error() -> None:
    import pytest

    from satm_cl.errors import SatmError
    from satm_cl.fields import PRECISION_NAMES
    from satm_cl.training import PRECISIONS

    assert set(PRECISIONS.names()) == set(PRECISION_NAMES)  # the torch-free names the configs check
    with pytest.raises(SatmError, match="unknown precision 'fp8'; valid: bf16, fp32"):
        TrainConfig(epochs=1, lr=0.1, precision="fp8")
