"""Which condensation preset a real-subset baseline (or an evaluation of one) borrows its settings from.

A baseline lives in the same model-input space, uses the same ConvNet and is evaluated with the same inner
LR, DSA and epochs as the condensed sets of its dataset, so it takes them from the (dataset, IPC) preset.
IPCs without a preset borrow the nearest preset of the same dataset (ties: the smaller IPC); datasets with
no preset at all get `CondenseConfig`'s defaults.
"""

from __future__ import annotations

from satm_cl.config import CondenseConfig, nearest_preset, resolve_config


def preset_for(dataset: str, ipc: int | None) -> tuple[CondenseConfig, str]:
    """The resolved condense config whose settings a `dataset`/`ipc` baseline uses, and the preset's name.

    `ipc=None` (the whole-train-split baseline) borrows the dataset's smallest-IPC preset.
    """
    name = nearest_preset(dataset, ipc)
    if name is None:
        return resolve_config(dataset, ipc or 1), "defaults"
    return resolve_config(preset=name, ipc=ipc), name
