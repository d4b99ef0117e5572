"""resolve_config: the merge order, including a preset's per-method values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satm_cl.config import PRESETS, resolve_config


def test_per_method_values_apply_to_their_method_only() -> None:
    satm, mtt = resolve_config("digits", 1, "satm"), resolve_config("digits", 1, "mtt")
    per = PRESETS[("digits", 1)]["per_method"]["satm"]
    assert (satm.syn_steps, satm.rho) == (per["syn_steps"], per["rho"])
    assert mtt.syn_steps == PRESETS[("digits", 1)]["syn_steps"] != satm.syn_steps
    assert "per_method" not in satm.to_dict()


def test_per_method_values_stay_with_their_preset() -> None:
    # presets built by copying digits-ipc1 must not inherit its per-method values
    for key in (("digits", 10), ("mnist5k", 1)):
        assert "per_method" not in PRESETS[key]
        assert resolve_config(*key, "satm").syn_steps == PRESETS[key]["syn_steps"]
    # fashion-mnist carries its own (an exact descent for SATM), not digits-ipc1's 80 steps
    for ipc in (1, 10):
        satm = resolve_config("fashion-mnist", ipc, "satm")
        assert satm.syn_steps == 20 and satm.rho == 0.5
        assert (satm.truncate, satm.truncate_descent, satm.reuse_trajectory) == (10, False, False)
        assert resolve_config("fashion-mnist", ipc, "mtt").truncate is None


def test_config_file_and_flags_override_per_method_values(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"syn_steps": 20, "rho": 0.5}))
    from_file = resolve_config("digits", 1, "satm", config_file=f)
    assert (from_file.syn_steps, from_file.rho) == (20, 0.5)
    flagged = resolve_config("digits", 1, "satm", config_file=f, overrides={"syn_steps": 30})
    assert flagged.syn_steps == 30


def test_truncate_beyond_syn_steps_is_refused_not_clamped() -> None:
    import pytest

    from satm_cl.errors import SatmError

    with pytest.raises(SatmError, match=r"truncate \(30\) exceeds syn_steps \(20\)"):
        resolve_config("digits", 1, "mtt", overrides={"truncate": 30})
    assert resolve_config("digits", 1, "mtt", overrides={"truncate": 20}).truncate == 20  # = exact, allowed


def test_config_values_of_the_wrong_type_are_one_line_errors(tmp_path: Path) -> None:
    import pytest

    from satm_cl.errors import SatmError

    f = tmp_path / "c.json"
    for bad, needle in (
        ({"syn_steps": "ten"}, "syn_steps"),
        ({"iterations": None}, "iterations"),
        ({"rho": True}, "rho"),
        ({"expert": "x"}, "expert"),
        ({"expert": {"epochs": "x"}}, "epochs"),
        ([1, 2], "JSON object"),
    ):
        f.write_text(json.dumps(bad))
        with pytest.raises(SatmError, match=needle) as info:
            resolve_config("digits", 1, "satm", config_file=f)
        assert "\n" not in str(info.value)


def test_precision_left_at_fp32_keeps_older_stores_and_artifacts_valid(tmp_path: Path) -> None:
    """`precision` came after stores and artifacts existed: at its default it is not written, so the
    store names (hashes) and recorded configs of older runs stay what they were; bf16 is a new store."""
    from dataclasses import replace

    from satm_cl.config import CondenseConfig
    from satm_cl.experts.store import store_path

    cfg = resolve_config("fashion-mnist", 1, "satm")
    assert "precision" not in cfg.to_dict() and "precision" not in cfg.to_dict()["expert"]
    # the preset's store, named before the setting existed (the cache of results/fashion-mnist-e2e); nor
    # does `zca_classes`, a later setting too, move it or the IPC 10 preset's whitened store (candidate E)
    assert store_path(tmp_path, cfg.expert).name == "fashion-mnist-convnet-b921c4539a5c"
    # the whitened store of candidate E (fp32), now a config away from the IPC 10 preset (candidate F, bf16)
    e = resolve_config("fashion-mnist", 10, "satm", overrides={"expert": {"precision": "fp32"}}).expert
    assert store_path(tmp_path, e).name == "fashion-mnist-convnet-b9e783dbc9aa"
    ipc10 = resolve_config("fashion-mnist", 10, "satm")
    # candidate H: F's bf16 store (the number of experts is not part of its name, so F's 6 grow to 26)
    assert store_path(tmp_path, ipc10.expert).name == "fashion-mnist-convnet-318c7b3e6d91"
    assert (ipc10.precision, ipc10.iterations, ipc10.eval_every) == ("bf16", 700, 140)
    assert ipc10.expert.num_experts == 26 and cfg.expert.num_experts == 6
    fast = replace(cfg, precision="bf16", expert=replace(cfg.expert, precision="bf16"))
    assert fast.to_dict()["precision"] == "bf16" and fast.to_dict()["expert"]["precision"] == "bf16"
    assert store_path(tmp_path, fast.expert) != store_path(tmp_path, cfg.expert)
    for c in (cfg, fast):
        assert CondenseConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_unknown_precision_in_a_config_file_is_refused(tmp_path: Path) -> None:
    import pytest

    from satm_cl.errors import SatmError

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"expert": {"precision": "fp16"}}))
    with pytest.raises(SatmError, match="precision must be one of fp32, bf16"):
        resolve_config("digits", 1, "satm", config_file=path)


@pytest.mark.parametrize(("ipc", "zca"), [(1, False), (10, True), (50, True)])
def test_fashion_mnist_presets_whiten_where_val_chose_it(ipc: int, zca: bool) -> None:
    """IPC 10 (and IPC 50, which copies it) whiten: candidate E won on val; IPC 1 was never compared."""
    cfg = resolve_config("fashion-mnist", ipc, "satm")
    assert cfg.expert.zca is zca
    assert cfg.eval_runs == (2 if zca else 1)
    assert cfg.eval_epochs == 1000  # the paper's and DSA's evaluation length


def test_method_names_the_minimizer_it_ran() -> None:
    """`method` labels the artifact and every record: it must be a known method and agree with the minimizer
    (MTT runs none), so `dataclasses.replace(cfg, method="mtt")` cannot label a SATM run as MTT."""
    from dataclasses import replace

    from satm_cl.errors import SatmError

    cfg = resolve_config("digits", 1, "satm")
    with pytest.raises(SatmError, match="method mtt with minimizer sam"):
        replace(cfg, method="mtt")
    with pytest.raises(SatmError, match="method must be one of mtt, satm"):
        replace(cfg, method="sotm")
    with pytest.raises(SatmError, match="method satm with minimizer none"):
        replace(cfg, minimizer="none")
    assert replace(cfg, minimizer="asam").minimizer == "asam"
    assert resolve_config("digits", 1, "mtt").minimizer == "none"


def test_preset_with_another_dataset_is_refused_and_ipc_means_its_settings_there() -> None:
    from satm_cl.errors import SatmError

    with pytest.raises(SatmError, match="preset digits-ipc1 is for digits, not dataset mnist5k"):
        resolve_config("mnist5k", 1, preset="digits-ipc1")
    at5 = resolve_config(ipc=5, preset="digits-ipc1")
    base = resolve_config(preset="digits-ipc1")
    assert (at5.dataset, at5.ipc, base.ipc) == ("digits", 5, 1)
    assert at5.dsa == base.dsa and at5.expert == base.expert


def test_an_ipc_without_a_preset_is_said_and_bad_overrides_are_one_line_errors() -> None:
    from satm_cl.errors import SatmError

    notes: list[str] = []
    resolve_config("digits", 5, note=notes.append)
    resolve_config("digits", 1, note=notes.append)
    assert len(notes) == 1 and "no digits-ipc5 preset: the library defaults apply" in notes[0]
    assert 'preset="digits-ipc1"' in notes[0]
    with pytest.raises(SatmError, match="overrides must be a dict"):
        resolve_config("digits", 1, overrides=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(SatmError, match="expert must be a dict"):
        resolve_config("digits", 1, overrides={"expert": 3})
