"""Class-incremental scenarios: class order per seed, even splits, task-aware (x, y, t) samples."""

from __future__ import annotations

import pytest
import torch

from satm_cl.continual.scenarios import draw_class_order, make_scenario
from satm_cl.data import DatasetSplits, Preprocessor
from satm_cl.errors import SatmError


def _prep(d: DatasetSplits) -> Preprocessor:
    return Preprocessor.fit(d.train.x, d.mean, d.std, zca=False)


def test_class_order_is_a_seeded_permutation() -> None:
    assert draw_class_order(10, 3) == draw_class_order(10, 3)
    assert sorted(draw_class_order(10, 3)) == list(range(10))
    assert draw_class_order(10, 3) != draw_class_order(10, 4)


def test_scenario_splits_classes_evenly_in_order(digits: DatasetSplits) -> None:
    sc = make_scenario(digits, 5, 7, _prep(digits))
    assert sc.class_order == draw_class_order(10, 7)
    assert sc.step_classes == [sc.class_order[i : i + 2] for i in range(0, 10, 2)]
    for exp, classes in zip(sc.train_stream, sc.step_classes, strict=True):
        assert sorted(exp.classes_in_this_experience) == sorted(classes)
        x, y, t = exp.dataset[0]
        assert int(y) in classes and int(t) == 0 and tuple(x.shape) == (1, 8, 8)
    total = sum(len(e.dataset) for e in sc.test_stream)
    assert total == len(digits.test)
    assert torch.allclose(sc.test_x, _prep(digits).transform(digits.test.x))


def test_uneven_steps_is_an_error(digits: DatasetSplits) -> None:
    with pytest.raises(SatmError, match="evenly"):
        make_scenario(digits, 3, 0, _prep(digits))
