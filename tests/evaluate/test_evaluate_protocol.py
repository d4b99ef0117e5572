"""The train-from-scratch protocol, architecture refusal and the out-of-domain resampling."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pytest
import torch

from satm_cl.baselines import create_baseline
from satm_cl.data import create_dataset, dataset_status
from satm_cl.evaluate import arch_refusal, evaluate_set, resample, set_eval_defaults
from satm_cl.evaluate.suites import OWN, SUITES, SuiteContext
from satm_cl.synthetic import SyntheticSet


@lru_cache(maxsize=1)
def _set() -> SyntheticSet:
    return create_baseline("random", "digits", 1, seed=0)


@lru_cache(maxsize=1)
def _test() -> tuple[torch.Tensor, torch.Tensor]:
    test = create_dataset("digits").test
    return test.x, test.y


def _tiny(syn: SyntheticSet) -> SyntheticSet:
    """The same set cut to 4×4 images: too small for LeNet."""
    return dataclasses.replace(
        syn, images=syn.images[..., :4, :4].contiguous(), meta={**syn.meta, "image_shape": [1, 4, 4]}
    )


def test_evaluate_set_runs_in_range_and_reproducible() -> None:
    x, y = _test()
    accs = evaluate_set(_set(), "convnet", x, y, runs=2, epochs=3, seed=0, device="cpu")
    assert len(accs) == 2 and all(0.0 <= a <= 100.0 for a in accs)
    assert evaluate_set(_set(), "convnet", x, y, runs=2, epochs=3, seed=0, device="cpu") == accs


def test_eval_defaults_come_from_the_preset() -> None:
    dsa, epochs = set_eval_defaults(_set())
    assert dsa == _set().meta["config"]["dsa"] and epochs == _set().meta["config"]["eval_epochs"]


def test_refused_size_is_skipped_not_an_error() -> None:
    tiny = _tiny(_set())
    assert "lenet needs images of at least" in (arch_refusal(tiny, "lenet") or "")
    assert arch_refusal(tiny, "mlp") is None
    x, y = _test()
    assert evaluate_set(tiny, "lenet", x[..., :4, :4], y, runs=1, epochs=1, seed=0, device="cpu") == []
    ctx = SuiteContext(tiny, "digits", {OWN: (x, y)}, archs=("lenet", "mlp"))
    targets, notes = SUITES.get("cross-arch")(ctx)
    assert [t.arch for t in targets] == ["mlp"]
    assert [n.arch for n in notes] == ["lenet"] and "at least" in notes[0].text


def test_resample_shapes_and_range() -> None:
    x, _ = _test()
    up = resample(x[:5], (28, 28))
    assert up.shape == (5, 1, 28, 28) and up.min() >= 0.0 and up.max() <= 1.0
    down = resample(torch.rand(3, 1, 28, 28), (8, 8))
    assert down.shape == (3, 1, 8, 8) and down.min() >= 0.0 and down.max() <= 1.0
    same = x[:2]
    assert resample(same, (8, 8)) is same  # already the right size: untouched


@pytest.mark.skipif(dataset_status("mnist5k") != "ready", reason="mnist5k needs the mnist extra")
def test_ood_suite_pairs_digits_with_mnist5k() -> None:
    x, y = _test()
    ctx = SuiteContext(_set(), "digits", {OWN: (x, y)})
    targets, notes = SUITES.get("ood")(ctx)
    assert not notes
    assert [(t.stage, t.test, t.test_dataset) for t in targets] == [
        ("ood", OWN, None),
        ("ood", "mnist5k", "mnist5k"),
    ]
    shifted_x, shifted_y = ctx.tests["mnist5k"]
    assert shifted_x.shape[1:] == (1, 8, 8) and shifted_x.shape[0] == shifted_y.shape[0] > 0


def test_ood_without_partner_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("satm_cl.evaluate.suites.OOD_PARTNERS", {})
    targets, notes = SUITES.get("ood")(SuiteContext(_set(), "digits", {}))
    assert targets == [] and len(notes) == 1 and "no offline out-of-domain partner" in notes[0].text


def test_stacked_and_sequential_evaluation_agree() -> None:
    from satm_cl.evaluate.protocol import evaluate_runs, run_groups

    x, y = _test()
    syn = _set()
    tests = {"test": (syn.preprocessor().transform(x), y)}
    seeds = [0, 1, 2]
    stacked = evaluate_runs(syn, "convnet", tests, 4, seeds, "cpu", stacked=True)
    sequential = evaluate_runs(syn, "convnet", tests, 4, seeds, "cpu", stacked=False)
    assert [r["test"] for r in stacked] == pytest.approx([r["test"] for r in sequential], abs=0.2)
    assert run_groups(syn, "convnet", seeds, "cpu") == [seeds]  # 10 digits images: stacking pays
    assert run_groups(syn, "mlp", seeds, "cpu") == [[0], [1], [2]]  # not a ConvNet: one by one
