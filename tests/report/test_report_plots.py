"""Plots: every figure is a real PNG (> 1 kB) and absent data gives None."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _report_fixtures import (
    continual_records,
    cross_arch_records,
    in_domain_records,
    make_artifact,
    ood_records,
)

from satm_cl.errors import SatmError
from satm_cl.report.plots import (
    plot_accuracy_vs_ipc,
    plot_condensation_curves,
    plot_continual_accuracy,
    plot_continual_matrices,
    plot_cross_arch,
    plot_image_grid,
    plot_ood,
    read_condensation_log,
)
from satm_cl.report.tables import load_paper_numbers, records_frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path | None) -> None:
    assert path is not None and path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1024


def test_record_plots(tmp_path: Path) -> None:
    frame = records_frame(in_domain_records() + cross_arch_records() + ood_records() + continual_records())
    assert_png(plot_accuracy_vs_ipc(frame, tmp_path / "ipc.png", paper=load_paper_numbers()))
    assert_png(plot_cross_arch(frame, tmp_path / "ca.png"))
    assert_png(plot_ood(frame, tmp_path / "ood.png"))
    assert_png(plot_continual_accuracy(frame, tmp_path / "cl.png"))
    assert_png(plot_continual_matrices(frame, tmp_path / "mat.png"))


def test_plots_skip_without_data(tmp_path: Path) -> None:
    frame = records_frame(cross_arch_records())
    assert plot_accuracy_vs_ipc(frame, tmp_path / "a.png") is None
    assert plot_ood(frame, tmp_path / "b.png") is None
    assert plot_continual_accuracy(frame, tmp_path / "c.png") is None
    assert plot_continual_matrices(frame, tmp_path / "d.png") is None
    assert plot_cross_arch(records_frame(ood_records()), tmp_path / "e.png") is None
    assert plot_condensation_curves([], tmp_path / "f.png") is None
    assert not list(tmp_path.iterdir())


def test_continual_without_classes_per_step(tmp_path: Path) -> None:
    recs = continual_records(steps=3)
    for r in recs:
        r["config"] = {}
    assert_png(plot_continual_accuracy(records_frame(recs), tmp_path / "cl.png"))


def test_condensation_curves(tmp_path: Path) -> None:
    a = make_artifact(tmp_path, "run_satm", "satm", val=True)
    b = make_artifact(tmp_path, "run_mtt", "mtt")
    assert_png(plot_condensation_curves([a, b], tmp_path / "curves.png"))
    meta, log = read_condensation_log(a)
    assert meta["method"] == "satm" and len(log) == 120 and "grad_norm" in log.columns


def test_condensation_log_errors(tmp_path: Path) -> None:
    a = make_artifact(tmp_path, "bad", "satm")
    (a / "log.jsonl").write_text('{"iteration": 0, "loss": 1}\nnot json\n')
    with pytest.raises(SatmError, match=r"log\.jsonl:2"):
        read_condensation_log(a)
    with pytest.raises(SatmError, match="not found"):
        read_condensation_log(tmp_path / "nope")


@pytest.mark.parametrize("channels", [1, 3])
def test_image_grid(tmp_path: Path, channels: int) -> None:
    torch.manual_seed(0)
    pixels = torch.rand(30, channels, 28, 28)
    labels = torch.arange(3).repeat_interleave(10)
    path = plot_image_grid(pixels, labels, ["zero", "one", "two"], tmp_path / f"grid{channels}.png")
    assert_png(path)


def test_image_grid_empty_and_bad_shape(tmp_path: Path) -> None:
    empty = torch.zeros(0, dtype=torch.long)
    assert plot_image_grid(torch.zeros(0, 1, 8, 8), empty, [], tmp_path / "e.png") is None
    with pytest.raises(SatmError, match="image grid"):
        plot_image_grid(torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.long), [], tmp_path / "x.png")


def test_image_grid_at_one_image_per_class_is_a_row(tmp_path: Path) -> None:
    from PIL import Image

    pixels = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    path = plot_image_grid(pixels, torch.arange(10), [str(k) for k in range(10)], tmp_path / "row.png")
    assert_png(path)
    width, height = Image.open(path).size
    assert width > 2 * height  # ten images side by side, not a one-column strip


def test_accuracy_vs_ipc_keeps_runs_of_other_epochs_apart(tmp_path: Path) -> None:
    """Runs trained for other numbers of epochs get their own panel, as they get their own table rows."""
    from PIL import Image

    recs = [{**r, "config": {"epochs": 100}} for r in in_domain_records() if r["dataset"] == "cifar10"]
    longer = [{**r, "config": {"epochs": 300}} for r in recs]
    one = plot_accuracy_vs_ipc(records_frame(recs), tmp_path / "one.png")
    two = plot_accuracy_vs_ipc(records_frame(recs + longer), tmp_path / "two.png")
    assert one is not None and two is not None
    assert Image.open(two).size[0] > 1.5 * Image.open(one).size[0]  # two panels side by side


def test_cross_arch_epochs_by_design_stay_in_one_panel(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """MTT's cross-arch protocol trains other architectures for other epochs: one panel, not two, whose
    title gives the epochs per architecture."""
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    recs = [{**r, "config": {"epochs": 300 if r["arch"] == "convnet" else 100}} for r in cross_arch_records()]
    assert plots.plot_cross_arch(records_frame(recs), tmp_path / "mixed.png") is not None
    titles = [ax.get_title() for ax in seen[0].axes if ax.get_visible()]
    assert len(titles) == 1
    assert "epochs by arch: convnet 300, resnet18 100, vgg11 100" in titles[0]


def test_plots_split_methods_trained_for_other_epochs(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """satm evaluated at 30 epochs and random at 10 were drawn in one panel with no word of epochs: now
    each training length has its panel, titled with it; one length for all is stated in the title."""
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    base = [r for r in in_domain_records() if r["dataset"] == "cifar10" and r["method"] in ("satm", "mtt")]
    recs = [{**r, "config": {"epochs": 30 if r["method"] == "satm" else 10}} for r in base]
    cross = [{**r, "config": {"epochs": 30 if r["method"] == "satm" else 10}} for r in cross_arch_records()]
    for plot, frame in ((plots.plot_accuracy_vs_ipc, recs), (plots.plot_cross_arch, cross)):
        seen.clear()
        assert plot(records_frame(frame), tmp_path / "p.png") is not None
        titles = sorted(ax.get_title() for ax in seen[0].axes if ax.get_visible())
        assert len(titles) == 2 and "10 epochs" in titles[0] and "30 epochs" in titles[1]
    seen.clear()
    same = records_frame([{**r, "config": {"epochs": 30}} for r in base])
    plots.plot_accuracy_vs_ipc(same, tmp_path / "o.png")
    titles = [ax.get_title() for ax in seen[0].axes if ax.get_visible()]
    assert len(titles) == 1 and "30 epochs" in titles[0]


def test_continual_panels_share_one_y_axis_and_state_uniform_epochs(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two protocols with accuracies far apart: both panels get the same y range (separate axes drew 20-85
    beside 50-100), and the one training length goes in the figure title."""
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    recs = [{**r, "value": r["value"] - (50.0 if protocol == "naive" else 0.0),
             "config": {**r["config"], "protocol": protocol, "epochs": 5}}
            for protocol in ("retrain", "naive") for r in continual_records()]
    frame = records_frame(recs)
    for plot in (plots.plot_continual_accuracy, plots.plot_offline_vs_stream):
        seen.clear()
        assert plot(frame, tmp_path / "c.png") is not None  # satm: offline, reservoir: stream
        axes = [ax for ax in seen[0].axes if ax.get_visible() and ax.has_data()]
        assert len(axes) >= 2 and len({ax.get_ylim() for ax in axes}) == 1
        assert "5 epochs of training per step" in seen[0]._suptitle.get_text()
    seen.clear()
    mixed = records_frame([{**r, "config": {**r["config"], "epochs": 5 + 95 * (r["seed"] == 0)}}
                           for r in recs])
    plots.plot_continual_accuracy(mixed, tmp_path / "m.png")
    titles = [ax.get_title() for ax in seen[0].axes if ax.get_visible()]
    assert any("100 epochs" in t for t in titles) and any("5 epochs" in t for t in titles)
    assert "of training per step" not in seen[0]._suptitle.get_text()


def test_multi_panel_evaluation_figures_name_their_methods_in_one_legend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accuracy-vs-IPC and cross-arch panels share one palette: one figure legend names every method once
    (it was one legend per panel)."""
    import satm_cl.report.plots as plots

    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or Path(path))
    recs = [{**r, "config": {"epochs": 30 if r["method"] == "satm" else 10}} for r in in_domain_records()]
    cross = [{**r, "config": {"epochs": 30 if r["method"] == "satm" else 10}} for r in cross_arch_records()]
    for plot, frame in ((plots.plot_accuracy_vs_ipc, recs), (plots.plot_cross_arch, cross)):
        seen.clear()
        assert plot(records_frame(frame), tmp_path / "p.png") is not None
        (fig,) = seen
        assert sum(ax.get_visible() for ax in fig.axes) >= 2
        panel_legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert not panel_legends and len(fig.legends) == 1
        names = [t.get_text() for t in fig.legends[0].get_texts()]
        assert len(names) == len(set(names)) and {"satm", "mtt"} <= set(names)


def test_a_memory_label_ranks_as_its_method() -> None:
    from satm_cl.report.tables import method_rank

    assert method_rank("satm (offline)")[0] == method_rank("satm")[0] < method_rank("reservoir (stream)")[0]
    assert method_rank("dc (paper: Zhao 2021)")[0] == method_rank("dc")[0]


@pytest.mark.parametrize("rows", [1, 6])
def test_a_figure_title_stays_clear_of_the_panel_titles(tmp_path: Path, rows: int) -> None:
    """A tall grid of panels with three-line titles (the offline-vs-stream figure over a whole protocol) put
    its first row's titles under the figure title; the title's band is now kept free at any height."""
    import matplotlib.pyplot as plt

    from satm_cl.report.plots import _save

    fig, axes = plt.subplots(rows, 2, figsize=(12.0, 4.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.plot([0, 1], [0, 1])
        ax.set_title("dataset · protocol · IPC\nepochs\nstream: built from the experiences seen so far")
    title = fig.suptitle("Offline vs stream memories (y axis shared by all panels)")
    _save(fig, tmp_path / "fig.png")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # the closed figure's layout, measured as drawn
    lowest_title_edge = title.get_window_extent(renderer).y0
    assert all(ax.title.get_window_extent(renderer).y1 <= lowest_title_edge for ax in axes[0])
