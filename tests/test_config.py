"""resolve_config: the merge order, including a preset's per-method values."""

from __future__ import annotations

import json
from pathlib import Path

from satm_cl.config import PRESETS, resolve_config


def test_per_method_values_apply_to_their_method_only() -> None:
    satm, mtt = resolve_config("digits", 1, "satm"), resolve_config("digits", 1, "mtt")
    per = PRESETS[("digits", 1)]["per_method"]["satm"]
    assert (satm.syn_steps, satm.rho) == (per["syn_steps"], per["rho"])
    assert mtt.syn_steps == PRESETS[("digits", 1)]["syn_steps"] != satm.syn_steps
    assert "per_method" not in satm.to_dict()


def test_per_method_values_stay_with_their_preset() -> None:
    # presets built by copying digits-ipc1 must not inherit its per-method values
    for key in (("digits", 10), ("mnist5k", 1), ("fashion-mnist", 1)):
        assert "per_method" not in PRESETS[key]
        assert resolve_config(*key, "satm").syn_steps == PRESETS[key]["syn_steps"]


def test_config_file_and_flags_override_per_method_values(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"syn_steps": 20, "rho": 0.5}))
    from_file = resolve_config("digits", 1, "satm", config_file=f)
    assert (from_file.syn_steps, from_file.rho) == (20, 0.5)
    flagged = resolve_config("digits", 1, "satm", config_file=f, overrides={"syn_steps": 30})
    assert flagged.syn_steps == 30
