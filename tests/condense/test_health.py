"""A condensed set's health: its images' scale and learned LR against where they started."""

from __future__ import annotations

import torch

from satm_cl.condense.health import LR_RATIO_LIMIT, STD_RATIO_LIMIT, set_health


def test_ratios_are_against_the_real_images_and_the_starting_lr() -> None:
    real = torch.randn(500, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    health = set_health(5.0 * real[:20], real, lr=0.003, lr_init=0.01)
    assert abs(health.pixel_std_ratio - 5.0) < 0.5
    assert abs(health.lr_ratio - 0.3) < 1e-9
    assert health.to_dict() == {"pixel_std_ratio": round(health.pixel_std_ratio, 4), "lr_ratio": 0.3}


def test_only_a_set_past_a_limit_is_flagged() -> None:
    real = torch.randn(500, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert set_health(real[:20], real, lr=0.01, lr_init=0.01).problems() == []
    blown = set_health((STD_RATIO_LIMIT + 1) * real[:20], real, lr=0.01, lr_init=0.01).problems()
    assert len(blown) == 1 and "pixel std" in blown[0]
    collapsed = set_health(real[:20], real, lr=0.5 * LR_RATIO_LIMIT * 0.01, lr_init=0.01).problems()
    assert len(collapsed) == 1 and "learned LR fell" in collapsed[0]
