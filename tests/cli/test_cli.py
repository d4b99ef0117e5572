"""The typer layer through CliRunner: happy paths on tiny settings and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from satm_cl.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_help_lists_commands() -> None:
    code, out, _ = _run("--help")
    assert code == 0
    for cmd in ("datasets", "experts", "condense", "evaluate", "report", "show", "bench", "reproduce"):
        assert cmd in out


def test_datasets_status() -> None:
    code, out, _ = _run("datasets")
    assert code == 0
    assert "digits" in out and "ready" in out and "needs --data-dir" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("condense", "--dataset", "nope"), "unknown dataset 'nope'; valid:"),
        (("condense", "--method", "magic"), "unknown method 'magic'; valid: mtt, satm"),
        (("condense", "--preset", "digits-ipc99"), "unknown preset"),
        (("experts", "--dataset", "cifar10", "--data-dir", str(Path(__file__).parent)), "cifar10"),
        (("show", "/nonexistent"), "/nonexistent does not exist"),
        (("condense", "--device", "tpu"), "unknown device"),
        (
            ("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1", "--lr-protocol", "x"),
            "unknown LR protocol 'x'",
        ),
        (
            (
                "evaluate",
                "--baseline",
                "random",
                "--dataset",
                "digits",
                "--ipc",
                "1",
                "--suite",
                "ood",
                "--corruptions",
                "fog",
            ),
            "unknown corruption 'fog'",
        ),
        (
            (
                "evaluate",
                "--baseline",
                "random",
                "--dataset",
                "digits",
                "--ipc",
                "1",
                "--checkpoint-every",
                "-1",
            ),
            "--checkpoint-every must be >= 0",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    code, _, err = _run(
        *args,
        *(("--cache-dir", str(tmp_path)) if args[0] in ("condense", "experts") else ()),
        *(("--out", str(tmp_path)) if args[0] == "evaluate" else ()),
    )
    assert code == 2
    assert message in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"syn_stepz": 3}))
    code, _, err = _run("condense", "--config", str(cfg), "--cache-dir", str(tmp_path))
    assert code == 2 and "unknown condense config keys: syn_stepz" in err


def test_continual_condense_config_errors_are_one_line(tmp_path: Path) -> None:
    base = (
        "evaluate",
        "--suite",
        "continual",
        "--memories",
        "satm-stream",
        "--orders",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path),
    )
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    code, _, err = _run(*base, "--condense-config", str(bad_json))
    assert code == 2 and "cannot read JSON file" in err and err.strip().count("\n") == 0
    bad_key = tmp_path / "key.json"
    bad_key.write_text(json.dumps({"iterationz": 1}))
    code, _, err = _run(*base, "--condense-config", str(bad_key))
    assert code == 2 and "unknown condense config keys: iterationz" in err
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_condense_show_end_to_end(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(
        json.dumps(
            {
                "iterations": 2,
                "syn_steps": 3,
                "max_start_epoch": 1,
                "eval_every": 0,
                "truncate": 2,
                "expert": {
                    "num_experts": 1,
                    "epochs": 3,
                    "arch_kwargs": {"width": 8, "depth": 2, "norm": "instance"},
                },
            }
        )
    )
    out = tmp_path / "art"
    code, stdout, err = _run(
        "condense", "--config", str(cfg), "--out", str(out), "--cache-dir", str(tmp_path), "--device", "cpu"
    )
    assert code == 0, err
    assert "wrote" in stdout and (out / "synthetic.safetensors").exists()
    assert "training the rest first" in err  # it said it trains the missing experts
    code, stdout, _ = _run("show", str(out), "--json")
    assert code == 0 and (out / "grid.png").stat().st_size > 1000
    assert json.loads(stdout)["method"] == "satm"
    code, _, err = _run("condense", "--config", str(cfg), "--out", str(out), "--cache-dir", str(tmp_path))
    assert code == 2 and "--resume" in err


def test_experts_precision_flag_trains_a_bf16_store(tmp_path: Path) -> None:
    """`experts --precision bf16` trains into its own store, whose manifest records the precision."""
    code, _, err = _run(
        "experts", "--num-experts", "1", "--epochs", "1", "--precision", "bf16", "--cache-dir", str(tmp_path)
    )
    assert code == 0, err
    (manifest,) = (tmp_path / "experts").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["config"]["precision"] == "bf16"


@pytest.mark.parametrize("native", [False, True])
def test_experts_bf16_warns_once_where_the_cpu_would_emulate_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """bf16 on a CPU without native bf16 (measured 7x slower) is said once, in one line, not per expert."""
    import satm_cl.device

    monkeypatch.setattr(satm_cl.device, "_cpu_bf16", lambda: native)
    args = ("experts", "--num-experts", "2", "--epochs", "1", "--precision", "bf16", "--device", "cpu")
    code, _, err = _run(*args, "--cache-dir", str(tmp_path))
    assert code == 0, err
    assert err.count("no native bf16") == (0 if native else 1)
    assert all(len(line) < 400 for line in err.splitlines())


def test_condense_precision_flag_sets_unroll_and_experts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`condense --precision` overrides the preset for the unroll and the experts it matches alike, and
    warns about the unroll too where bf16 would be emulated."""
    import satm_cl.device

    monkeypatch.setattr(satm_cl.device, "_cpu_bf16", lambda: False)
    cfg = tmp_path / "tiny.json"
    tiny = {"iterations": 1, "syn_steps": 2, "truncate": 2, "max_start_epoch": 1, "eval_every": 0}
    tiny["expert"] = {
        "num_experts": 1,
        "epochs": 3,
        "arch_kwargs": {"width": 8, "depth": 1, "norm": "instance"},
    }
    cfg.write_text(json.dumps(tiny))
    out = tmp_path / "art"
    args = ("condense", "--config", str(cfg), "--precision", "bf16", "--device", "cpu", "--out", str(out))
    code, _, err = _run(*args, "--cache-dir", str(tmp_path))
    assert code == 0, err
    assert "expert training runs bf16" in err and "the condensation unroll runs bf16" in err
    config = json.loads((out / "synthetic.json").read_text())["config"]
    assert config["precision"] == "bf16" and config["expert"]["precision"] == "bf16"
    code, _, err = _run("condense", "--precision", "fp16", "--out", str(tmp_path / "x"))
    assert code == 2 and "precision must be one of fp32, bf16" in err and err.strip().count("\n") == 0


def test_experts_config_file_trains_the_store_condense_would_use(tmp_path: Path) -> None:
    """`experts --config` reads the `expert` part of a condense config, so the store it fills is the one a
    `condense --config` run with the same file looks for (here: a ZCA store)."""
    from satm_cl.config import resolve_config
    from satm_cl.experts.store import store_path

    cfg = tmp_path / "zca.json"
    cfg.write_text(
        json.dumps(
            {
                "max_start_epoch": 1,
                "expert_epochs": 1,
                "expert": {"zca": True, "num_experts": 1, "epochs": 2, "arch_kwargs": {"width": 8}},
            }
        )
    )
    code, _, err = _run("experts", "--config", str(cfg), "--cache-dir", str(tmp_path), "--device", "cpu")
    assert code == 0, err
    (manifest,) = (tmp_path / "experts").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["config"]["zca"] is True
    wanted = store_path(tmp_path, resolve_config("digits", 1, config_file=cfg).expert)
    assert manifest.parent == wanted


def test_presets_listing_shows_evaluation_epochs_and_zca() -> None:
    """`presets` states what a preset's numbers depend on: evaluation length and ZCA (they differ across
    presets: digits 300 epochs, Fashion-MNIST and the paper's 1000; Fashion-MNIST and CIFAR-10 IPC 10
    whitened)."""
    code, out, _ = _run("presets")
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert code == 0
    assert "eval_epochs=1000 zca=False" in lines["fashion-mnist-ipc1"]
    assert "eval_epochs=1000 zca=True" in lines["fashion-mnist-ipc10"]
    assert "eval_epochs=300 zca=False" in lines["digits-ipc1"]
    assert "eval_epochs=1000 zca=True" in lines["cifar10-ipc10"]
    # and how many expert trajectories it trains, and in which precision (candidate H: 26 bf16 experts)
    assert "experts=26x5 precision=bf16" in lines["fashion-mnist-ipc10"]
    assert "experts=6x5 precision=fp32" in lines["fashion-mnist-ipc1"]
    assert len({line.index(" syn_steps=") for line in lines.values()}) == 1  # one column for every preset


def test_evaluate_help_names_every_continual_memory() -> None:
    from satm_cl.continual.runner import MEMORY_NAMES

    res = runner.invoke(app, ["evaluate", "--help"], terminal_width=400)
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    missing = [m for m in MEMORY_NAMES if m not in text.replace("│", " ")]
    assert not missing


def test_condense_jobs_train_the_experts_on_a_grid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`--jobs 2` hands condense a two-worker grid for the experts; the default keeps them in this process."""
    import satm_cl.condense as condense_pkg
    from satm_cl.errors import SatmError

    seen: list[object] = []

    def fake(*args: object, executor: object = None, **kwargs: object) -> None:
        seen.append(executor)
        raise SatmError("stop here")

    monkeypatch.setattr(condense_pkg, "condense", fake)
    out = str(tmp_path / "set")
    assert _run("condense", "--out", out, "--jobs", "2")[0] == 2
    assert _run("condense", "--out", out)[0] == 2
    first, default = seen
    assert (first.jobs, first.threads, default) == (2, 1, None)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def random_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from satm_cl.baselines import create_baseline

    return create_baseline("random", "digits", 1).save(tmp_path_factory.mktemp("set") / "random")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--ipc", "0"), "ipc must be >= 1, got 0"),
        (("--suite", "in-domain"), "--suite continual runs alone"),
        (("--runs", "3", "--archs", "mlp"), "--runs, --archs do(es) not apply to --suite continual"),
        (("--lr-protocol", "tuned"), "--lr-protocol do(es) not apply"),
        (("--synthetic", "SET", "--memories", "satm,reservoir"), "--synthetic is a random set, but random"),
    ],
)
def test_continual_refuses_what_it_would_ignore_or_mislabel(
    tmp_path: Path, random_set: Path, extra: tuple[str, ...], message: str
) -> None:
    """A continual evaluation must not quietly run at another IPC, drop other suites and options, or record
    a given set under another method's name."""
    extra = tuple(str(random_set) if a == "SET" else a for a in extra)
    code, _, err = _run("evaluate", "--suite", "continual", "--memories", "random", "--orders", "1",
                        "--out", str(tmp_path / "out"), *extra)
    assert code == 2 and message in err, err
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_continual_records_a_given_set_under_its_own_method(tmp_path: Path, random_set: Path) -> None:
    code, out, err = _run("evaluate", "--suite", "continual", "--synthetic", str(random_set), "--memories",
                          "random", "--orders", "1", "--steps", "2", "--epochs", "1", "--out", str(tmp_path))
    assert code == 0, err
    # the command ends with its number (final average accuracy), not only the records' path
    assert out.splitlines()[0].startswith("continual random digits ipc=1 convnet retrain")
    assert "% (n=1)" in out
    methods = {json.loads(line)["method"] for line in (tmp_path / "records.jsonl").read_text().splitlines()}
    assert methods == {"random"}
    from satm_cl.continual import ContinualRequest, run_continual
    from satm_cl.errors import SatmError

    with pytest.raises(SatmError, match="is a random set, not a satm one"):
        run_continual(ContinualRequest(memories=("satm",), orders=1, out=tmp_path / "x", device="cpu",
                                       synthetic={"satm": random_set}, epochs=1, progress=False))


def test_download_fetches_through_torchvision_or_says_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`download` asks the loader to download into --data-dir (no network in tests: the call is recorded);
    a dataset torchvision cannot fetch is refused in one line."""
    import satm_cl.data as data

    calls: list[tuple[str, object, bool]] = []

    def fake(name: str, data_dir: object = None, download: bool = False, **kw: object) -> object:
        calls.append((name, data_dir, download))
        return real("digits")

    real = data.create_dataset
    monkeypatch.setattr(data, "create_dataset", fake)
    code, out, _ = _run("download", "cifar10", "--data-dir", str(tmp_path / "new"))
    assert code == 0 and calls == [("cifar10", tmp_path / "new", True)]
    assert out.startswith(f"cifar10 ready in {tmp_path / 'new'}: 1257 train and 540 test images")
    code, _, err = _run("download", "fashion-mnist", "--data-dir", str(tmp_path))
    assert code == 2 and "cannot download 'fashion-mnist' (it can: cifar10, cifar100, mnist, svhn)" in err


def test_condense_preset_and_dataset_must_agree(tmp_path: Path) -> None:
    """A --preset of another dataset silently replaced --dataset (Fashion-MNIST experts for a digits run)."""
    code, _, err = _run("condense", "--dataset", "digits", "--preset", "fashion-mnist-ipc10",
                        "--out", str(tmp_path / "x"), "--cache-dir", str(tmp_path))
    assert code == 2 and "--preset fashion-mnist-ipc10 is for fashion-mnist, not --dataset digits" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "experts").exists()


def test_condense_without_a_preset_for_the_ipc_says_which_settings_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import satm_cl.condense as condense_pkg
    from satm_cl.errors import SatmError

    seen: list[Any] = []

    def fake(cfg: Any, *args: object, **kwargs: object) -> None:
        seen.append(cfg)
        raise SatmError("stop here")

    monkeypatch.setattr(condense_pkg, "condense", fake)
    code, _, err = _run("condense", "--ipc", "3", "--out", str(tmp_path / "a"))
    assert code == 2 and "no digits-ipc3 preset: the library defaults apply" in err
    assert "--preset digits-ipc1" in err
    code, _, err = _run("condense", "--preset", "digits-ipc1", "--ipc", "3", "--out", str(tmp_path / "b"))
    assert code == 2 and "no digits-ipc3 preset" not in err
    defaults, borrowed = seen
    assert (defaults.ipc, borrowed.ipc, borrowed.dataset) == (3, 3, "digits")
    assert borrowed.lr_init != defaults.lr_init  # the preset's settings at IPC 3, not the defaults


def test_evaluate_ends_with_its_numbers(tmp_path: Path) -> None:
    code, out, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                          "--runs", "2", "--epochs", "2", "--out", str(tmp_path))
    assert code == 0, err
    first, last = out.splitlines()[0], out.splitlines()[-1]
    assert first.startswith("in-domain random digits ipc=1 convnet learned: ") and first.endswith("% (n=2)")
    assert last == f"records: {tmp_path / 'records.jsonl'}"


def test_condense_says_which_images_it_kept(tmp_path: Path) -> None:
    """Without validation the last iteration's images are kept: not 'no iteration ran'."""
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"eval_every": 0, "max_start_epoch": 1, "expert_epochs": 1, "syn_steps": 2,
                               "truncate": 2, "expert": {"num_experts": 1, "epochs": 2}}))
    base = ("condense", "--config", str(cfg), "--cache-dir", str(tmp_path / "cache"))
    code, out, err = _run(*base, "--iterations", "2", "--out", str(tmp_path / "a"))
    assert code == 0, err
    kept = "the images of iteration 2, the last one: no validation ran to select another)"
    assert out.strip().endswith(kept)
    code, out, err = _run(*base, "--iterations", "0", "--out", str(tmp_path / "b"))
    assert code == 0 and out.strip().endswith("the starting images: no iteration ran)"), err


def test_a_resumed_evaluate_summarises_its_own_set_not_the_last_one_written(tmp_path: Path) -> None:
    """Set A, then a random baseline into the same --out, then A again (all resumed): the third call's
    summary is A's numbers, not the baseline's, the file's last rows of that seed."""
    import dataclasses

    from satm_cl.baselines import create_baseline

    made = create_baseline("random", "digits", 1, seed=7)
    art = dataclasses.replace(made, meta={**made.meta, "method": "satm"}).save(tmp_path / "art")
    common = ("--suite", "in-domain", "--runs", "2", "--epochs", "2", "--device", "cpu",
              "--out", str(tmp_path / "out"))
    code, first, err = _run("evaluate", "--synthetic", str(art), *common)
    assert code == 0, err
    code, other, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1", *common)
    assert code == 0, err
    assert other.splitlines()[0].startswith("in-domain random digits ipc=1 convnet learned: ")
    code, again, err = _run("evaluate", "--synthetic", str(art), *common)
    assert code == 0, err
    assert again.splitlines()[0].startswith("in-domain satm digits ipc=1 convnet learned: ")
    assert again == first  # the resumed call trained nothing and says what the first call said


def test_evaluate_help_says_what_each_continual_option_means() -> None:
    """--epochs names the strategy protocols' own default (and what it counts), --protocol what each
    protocol is, --steps and --synthetic their constraints."""
    from satm_cl.cli import STRATEGY_EPOCHS_DEFAULT
    from satm_cl.continual.protocols import STRATEGY_EPOCHS

    assert STRATEGY_EPOCHS_DEFAULT == STRATEGY_EPOCHS
    res = runner.invoke(app, ["evaluate", "--help"], terminal_width=400)
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    for phrase in (
        f"per experience for the strategy protocols, whose default is {STRATEGY_EPOCHS}",
        "per fresh model per step for retrain",
        "must divide the dataset's classes",
        "it stands for its method's memory",
        "must be in --memories",
        "retrain (the paper's: a fresh model trained on the memory alone each step)",
        "naive, lwf, ewc (Avalanche's strategy with a ReplayPlugin replaying the memory)",
        "er_ace, der (Avalanche's strategy with the memory as its buffer)",
        "[default: the set's; continual: digits]",
        "[default: runs/eval]",
    ):
        assert phrase in text, phrase
    res = runner.invoke(app, ["report", "--help"], terminal_width=400)
    assert res.exit_code == 0 and "or directories holding them" in res.stdout
    assert "continual included" in " ".join(res.stdout.split())


def test_split_list_strips_whitespace_around_names() -> None:
    from satm_cl.cli import split_list

    assert split_list("satm, herding") == ["satm", "herding"]
    assert split_list(" a ,, b ", "c,d ") == ["a", "b", "c", "d"]
    assert split_list("", " , ") == []


def test_comma_lists_may_have_spaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--memories "random, reservoir"` was `unknown memory ' reservoir'`; --archs and --suite alike."""
    import satm_cl.continual.runner as continual
    import satm_cl.evaluate.runner as evaluation
    from satm_cl.errors import SatmError

    seen: list[Any] = []

    def capture(req: Any, *args: object, **kwargs: object) -> None:
        seen.append(req)
        raise SatmError("stop here")

    monkeypatch.setattr(continual, "run_continual", capture)
    monkeypatch.setattr(evaluation, "evaluate_request", capture)
    code, _, err = _run("evaluate", "--suite", "continual", "--memories", "random, reservoir ",
                        "--out", str(tmp_path))
    assert code == 2 and "stop here" in err, err
    code, _, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                        "--suite", "in-domain, cross-arch", "--archs", "convnet, mlp", "--out", str(tmp_path))
    assert code == 2 and "stop here" in err, err
    memories, evaluation_req = seen
    assert memories.memories == ("random", "reservoir")
    assert (evaluation_req.suites, evaluation_req.archs) == (("in-domain", "cross-arch"), ("convnet", "mlp"))


def test_an_interrupt_says_how_to_continue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """condense continues with --resume; the continual suite's memories continue on a plain rerun."""
    import satm_cl.condense as condense_pkg
    import satm_cl.continual.runner as continual
    import satm_cl.evaluate.runner as evaluation

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    for module, name in ((condense_pkg, "condense"), (continual, "run_continual"),
                         (evaluation, "evaluate_request")):
        monkeypatch.setattr(module, name, interrupt)
    code, _, err = _run("condense", "--out", str(tmp_path / "set"))
    assert code == 130 and "rerun the same command with --resume" in err, err
    code, _, err = _run("evaluate", "--suite", "continual", "--memories", "satm", "--out", str(tmp_path))
    assert code == 130 and "--resume for condense" not in err, err
    assert "a memory's condensation continues from its last checkpoint, no --resume needed" in err
    code, _, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                        "--out", str(tmp_path))
    assert code == 130 and err.strip() == "interrupted; finished work is saved (rerun the same command)", err


def test_evaluate_writes_under_the_ignored_runs_tree_by_default() -> None:
    from satm_cl.evaluate import EvalRequest

    assert EvalRequest().out == Path("runs/eval")


def test_reset_optimizer_outside_the_continual_suite_is_an_error() -> None:
    code, _, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                        "--reset-optimizer")
    assert code == 2 and "--reset-optimizer applies only to --suite continual" in err
    code, _, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                        "--replay-batch", "20")
    assert code == 2 and "--replay-batch applies only to --suite continual" in err
    code, _, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                        "--replay-batch", "0")  # 0 is a value too, not "not given"
    assert code == 2 and "--replay-batch applies only to --suite continual" in err


def test_a_grid_option_out_of_range_is_named_before_any_work() -> None:
    code, out, err = _run("evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1",
                          "--threads", "0")
    assert code == 2 and err.strip() == "error: --threads must be >= 1, got 0" and out == ""


@pytest.mark.parametrize(
    "args, hint",
    [(["condense", "--dataset"], "condense --help"), (["evaluate", "--ipc", "x"], "evaluate --help"),
     (["evaluat"], "--help"), (["--bogus"], "--help")],
)
def test_usage_errors_say_which_help_to_read(args: list[str], hint: str) -> None:
    """A missing option value (click gives it no context) still names the command whose --help explains it."""
    res = runner.invoke(app, args, prog_name="satm-cl")
    code, out, err = res.exit_code, res.stdout, res.stderr
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and err.rstrip().endswith(f"(see satm-cl {hint})"), err


def test_package_warnings_print_as_warning_lines_once(capsys: pytest.CaptureFixture[str]) -> None:
    """A command's `log.warning(...)` reaches stderr as one `warning: ...` line, however many commands ran."""
    import logging

    from satm_cl.cli import _guard

    for _ in range(2):
        _guard(lambda: logging.getLogger("satm_cl.continual.runner").warning("memory sizes %s", "20, 40"))
    err = capsys.readouterr().err
    assert err == "warning: memory sizes 20, 40\n" * 2
