"""The bad-input suite: CLI options, config files, artifacts, expert stores, data directories, records files.

Every case runs the CLI in-process on a fresh copy of one workspace (a good artifact, records, an earlier
report, a tiny expert store, fake Fashion-MNIST files) and asserts: exit code 2, exactly one `error:` line
on stderr, no traceback, and no file of the workspace modified, deleted or added. Hypothesis mutates
artifact metadata and safetensors bytes (with a matching SHA-256) under the same rules, except that a
mutation the loader may accept must then run cleanly. The counts print at the end of the run.
"""

# ruff: noqa: E501  (the case table reads best one case per line)
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _fake_data import idx_bytes, write_fashion_mnist
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from typer.testing import CliRunner

from satm_cl.baselines import create_baseline
from satm_cl.cli import app
from satm_cl.config import resolve_config
from satm_cl.experts.store import store_path
from satm_cl.experts.train import train_experts
from satm_cl.synthetic import META_FILE, TENSOR_FILE

runner = CliRunner()
TINY = {
    "iterations": 2,
    "syn_steps": 3,
    "max_start_epoch": 1,
    "eval_every": 0,
    "truncate": 2,
    "expert": {"num_experts": 1, "epochs": 3, "arch_kwargs": {"width": 8, "depth": 2, "norm": "instance"}},
}
RECORD = {"stage": "in-domain", "method": "random", "dataset": "digits", "ipc": 1, "arch": "convnet"}


# ------------------------------------------------------------------ the workspace every case starts from
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("template")
    create_baseline("random", "digits", 1).save(ws / "art")
    rows = [{**RECORD, "seed": s, "metric": "test_accuracy", "value": 40.0 + s} for s in (0, 1)]
    (ws / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ws / "evalout").mkdir()
    (ws / "evalout" / "records.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (ws / "report").mkdir()
    (ws / "report" / "README.md").write_text("# an earlier report\n")
    (ws / "tiny.json").write_text(json.dumps(TINY))
    cfg = resolve_config("digits", 1, "satm", config_file=ws / "tiny.json")
    train_experts(cfg.expert, ws / "cache", torch.device("cpu"), progress=False)
    write_fashion_mnist(ws / "fashion" / "fashion-mnist")
    (ws / "file.txt").write_text("not a directory\n")
    return ws


def store_dir(ws: Path) -> Path:
    return store_path(ws / "cache", resolve_config("digits", 1, "satm", config_file=ws / "tiny.json").expert)


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st_ = p.stat()
            out[str(p.relative_to(root))] = (
                st_.st_size,
                st_.st_mtime_ns,
                hashlib.sha256(p.read_bytes()).hexdigest(),
            )
    return out


def invoke(
    tally: Any, case: str, ws: Path, args: list[str], *, accept_success: bool = False
) -> tuple[int, str, list[str], list[str]]:
    """Run the CLI in `ws`; count it; return (exit code, stderr, changed-or-deleted files, added files)."""
    before = snapshot(ws)
    res = runner.invoke(app, [a.replace("{ws}", str(ws)) for a in args])
    after = snapshot(ws)
    crashed = (res.exception is not None and not isinstance(res.exception, SystemExit)) or (
        "Traceback" in res.output
    )
    changed = [p for p, v in before.items() if after.get(p) != v]
    added = [p for p in after if p not in before]
    tally.tried += 1
    tally.cases.add(case)
    tally.tracebacks += int(crashed)
    tally.modified += int(bool(changed))
    assert not crashed, f"{case}: {res.exception!r}\n{res.output}"
    if not (accept_success and res.exit_code == 0):
        assert res.exit_code == 2, f"{case}: exit {res.exit_code}\n{res.output}"
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{case}: {res.stderr!r}"
        assert not added, f"{case} added {added}"
    assert not changed, f"{case} modified {changed}"
    return res.exit_code, res.stderr, changed, added


@pytest.fixture
def ws(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the workspace, as the working directory and the default cache."""
    work = tmp_path / "ws"
    shutil.copytree(template, work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("SATM_CL_CACHE", str(work / "cache"))
    return work


# ------------------------------------------------------------------ mutations of workspace files
def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def set_key(key: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {**d, key: value}


def reseal(art: Path) -> None:
    """Make synthetic.json's SHA-256 match the (edited) tensor file, as a careful forger would."""
    edit_json(
        art / META_FILE, set_key("sha256", hashlib.sha256((art / TENSOR_FILE).read_bytes()).hexdigest())
    )


def retensor(**change: Any) -> Callable[[Path], None]:
    """Rewrite the artifact's tensors with some replaced, then reseal."""

    def apply(ws: Path) -> None:
        from safetensors.torch import load_file

        art = ws / "art"
        tensors = load_file(str(art / TENSOR_FILE))
        for key, fn in change.items():
            tensors[key] = fn(tensors[key])
        save_file(tensors, str(art / TENSOR_FILE))
        reseal(art)

    return apply


def nan_pixel(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[0, 0, 0, 0] = float("nan")
    return x


def raw_tensor_file(data: bytes) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        (ws / "art" / TENSOR_FILE).write_bytes(data)
        reseal(ws / "art")

    return apply


def manifest(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Path], None]:
    return lambda ws: edit_json(store_dir(ws) / "manifest.json", change)


def expert_file(data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Replace expert 0's file and record its new hash in the manifest (so only content checks can tell)."""

    def apply(ws: Path) -> None:
        f = store_dir(ws) / "expert_000.safetensors"
        f.write_bytes(data(f.read_bytes()))
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        manifest(lambda m: {**m, "experts": {"0": {**m["experts"]["0"], "sha256": digest}}})(ws)

    return apply


def wrong_shape_expert(raw: bytes) -> bytes:
    path = Path("/tmp") / f"satm-wrong-shape-{hashlib.sha256(raw).hexdigest()[:8]}.safetensors"
    save_file({"trajectory": torch.zeros(2, 5)}, str(path))
    return path.read_bytes()


def fashion(stem: str, data: bytes) -> Callable[[Path], None]:
    return lambda ws: (ws / "fashion" / "fashion-mnist" / f"{stem}.gz").write_bytes(gzip.compress(data))


def write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())

    return apply


def config(obj: Any) -> Callable[[Path], None]:
    return write("c.json", json.dumps(obj))


def tiny_with(**change: Any) -> Callable[[Path], None]:
    return config({**TINY, **change})


def tiny_expert_with(**change: Any) -> Callable[[Path], None]:
    return config({**TINY, "expert": {**TINY["expert"], **change}})


NOTHING: Callable[[Path], None] = lambda ws: None  # noqa: E731
CONDENSE = ["condense", "--config", "{ws}/tiny.json", "--out", "{ws}/new-art", "--device", "cpu"]
CONDENSE_C = ["condense", "--config", "{ws}/c.json", "--out", "{ws}/new-art", "--device", "cpu"]
EVAL_ART = ["evaluate", "--synthetic", "{ws}/art", "--runs", "1", "--epochs", "1", "--out", "{ws}/evalout"]
EVAL_RANDOM = [
    "evaluate",
    "--baseline",
    "random",
    "--dataset",
    "digits",
    "--ipc",
    "1",
    "--out",
    "{ws}/evalout",
]
CONTINUAL = [
    "evaluate",
    "--suite",
    "continual",
    "--memories",
    "random",
    "--orders",
    "1",
    "--out",
    "{ws}/evalout",
]
FASHION = ["evaluate", "--baseline", "random", "--dataset", "fashion-mnist", "--ipc", "1", "--runs", "1",
           "--data-dir", "{ws}/fashion", "--out", "{ws}/evalout"]  # fmt: skip
REPORT = ["report", "{ws}/bad.jsonl", "--out", "{ws}/new-report"]
TRAIN_LABELS = "train-labels-idx1-ubyte"

# (case id, workspace mutation, arguments, expected text in the one error line)
CASES: list[tuple[str, Callable[[Path], None], list[str], str]] = [
    # ---- CLI options
    ("opt-ipc-not-int", NOTHING, ["condense", "--ipc", "abc"], "Invalid value for '--ipc'"),
    ("opt-ipc-zero", NOTHING, ["condense", "--ipc", "0", "--out", "{ws}/o"], "ipc must be"),
    ("opt-iterations-negative", NOTHING, [*CONDENSE, "--iterations", "-1"], "iterations must be"),
    ("opt-unknown-method", NOTHING, ["condense", "--method", "magic"], "unknown method 'magic'"),
    ("opt-unknown-dataset", NOTHING, ["condense", "--dataset", "nope"], "unknown dataset 'nope'"),
    ("opt-bad-preset", NOTHING, ["condense", "--preset", "garbage"], "preset names look like"),
    ("opt-unknown-device", NOTHING, [*CONDENSE, "--device", "tpu"], "unknown device"),
    ("opt-unknown-option", NOTHING, ["condense", "--bogus", "1"], "No such option: --bogus"),
    ("opt-unknown-command", NOTHING, ["condensate"], "No such command 'condensate'"),
    ("opt-missing-argument", NOTHING, ["report"], "Missing argument"),
    ("opt-missing-value", NOTHING, ["condense", "--dataset"], "'--dataset' requires an argument. (see "),
    ("opt-experts-zero", NOTHING, ["experts", "--num-experts", "0"], "num_experts"),
    ("opt-expert-epochs-zero", NOTHING, ["experts", "--epochs", "0"], "epochs must be"),
    ("opt-expert-precision", NOTHING, ["experts", "--precision", "fp8"], "precision must be one of"),
    ("opt-runs-zero", NOTHING, [*EVAL_RANDOM, "--runs", "0"], "--runs must be >= 1"),
    ("opt-epochs-zero", NOTHING, [*EVAL_RANDOM, "--epochs", "0"], "--epochs must be >= 1"),
    ("opt-unknown-suite", NOTHING, [*EVAL_RANDOM, "--suite", "nope"], "unknown suite 'nope'"),
    ("opt-unknown-arch", NOTHING, [*EVAL_RANDOM, "--suite", "cross-arch", "--archs", "gpt"], "unknown arch 'gpt'"),
    ("opt-two-sources", NOTHING, [*EVAL_RANDOM, "--synthetic", "{ws}/art"], "exactly one of --synthetic"),
    ("opt-baseline-no-dataset", NOTHING, ["evaluate", "--baseline", "random", "--ipc", "1"], "needs --dataset"),
    ("opt-unknown-baseline", NOTHING, [*EVAL_RANDOM[:2], "magic", *EVAL_RANDOM[3:]], "unknown baseline"),
    ("opt-unknown-memory", NOTHING, [*CONTINUAL, "--memories", "bogus"], "unknown memory 'bogus'"),
    ("opt-unknown-protocol", NOTHING, [*CONTINUAL, "--protocol", "nope"], "unknown protocol 'nope'"),
    ("opt-uneven-steps", NOTHING, [*CONTINUAL, "--steps", "3"], "do not split evenly"),
    ("opt-unknown-table", NOTHING, ["reproduce", "nope"], "unknown table 'nope'"),
    ("opt-unknown-scale", NOTHING, ["reproduce", "in-domain", "--scale", "huge"], "unknown scale 'huge'"),
    ("out-condense-file", NOTHING, [*CONDENSE[:-4], "--out", "{ws}/file.txt"], "not a directory"),
    ("out-evaluate-file", NOTHING, [*EVAL_RANDOM[:-1], "{ws}/file.txt"], "not a directory"),
    ("out-continual-file", NOTHING, [*CONTINUAL[:-1], "{ws}/file.txt"], "not a directory"),
    ("out-report-file", NOTHING, ["report", "{ws}/records.jsonl", "--out", "{ws}/file.txt"], "not a directory"),
    ("out-reproduce-file", NOTHING, ["reproduce", "in-domain", "--dry-run", "--out", "{ws}/file.txt"], "not a directory"),
    ("out-under-file", NOTHING, ["report", "{ws}/records.jsonl", "--out", "{ws}/file.txt/r"], "not a directory"),
    ("out-show-directory", NOTHING, ["show", "{ws}/art", "--out", "{ws}/report"], "is a directory"),
    ("cache-dir-file", NOTHING, [*CONDENSE, "--cache-dir", "{ws}/file.txt"], "--cache-dir"),
    # ---- data directories
    ("data-dir-missing-experts", NOTHING, ["experts", "--data-dir", "{ws}/nope"], "does not exist"),
    ("data-dir-missing-condense", NOTHING, [*CONDENSE, "--data-dir", "{ws}/nope"], "does not exist"),
    ("data-dir-missing-evaluate", NOTHING, [*EVAL_RANDOM, "--data-dir", "{ws}/nope"], "does not exist"),
    ("data-dir-missing-continual", NOTHING, [*CONTINUAL, "--data-dir", "{ws}/nope"], "does not exist"),
    ("data-dir-missing-datasets", NOTHING, ["datasets", "--data-dir", "{ws}/nope"], "does not exist"),
    ("data-dir-missing-reproduce", NOTHING, ["reproduce", "in-domain", "--dry-run", "--data-dir", "{ws}/nope"], "does not exist"),
    ("data-dir-is-file", NOTHING, [*EVAL_RANDOM, "--data-dir", "{ws}/file.txt"], "not a directory"),
    ("data-dataset-absent", NOTHING, [*EVAL_RANDOM[:4], "cifar10", *EVAL_RANDOM[5:], "--data-dir", "{ws}/report"], "cifar10"),
    ("data-idx-truncated", fashion(TRAIN_LABELS, idx_bytes(np.zeros(100, "u1"))[:-5]), FASHION, "truncated"),
    ("data-idx-bad-magic", fashion(TRAIN_LABELS, b"\x01\x02\x03\x04" + b"\x00" * 200), FASHION, "bad magic"),
    ("data-idx-count-mismatch", fashion(TRAIN_LABELS, idx_bytes(np.arange(90, dtype="u1") % 10)), FASHION, "labels"),
    ("data-idx-label-range", fashion(TRAIN_LABELS, idx_bytes(np.arange(100, dtype="u1") % 12)), FASHION, "labels"),
    # ---- config files
    ("config-not-json", write("c.json", "{oops"), CONDENSE_C, "cannot read config file"),
    ("config-binary", write("c.json", b"\xff\xfe\x00garbage"), CONDENSE_C, "cannot read config file"),
    ("config-missing", NOTHING, CONDENSE_C, "cannot read config file"),
    ("config-a-list", config([1, 2]), CONDENSE_C, "JSON object"),
    ("config-unknown-key", config({"syn_stepz": 3}), CONDENSE_C, "unknown condense config keys: syn_stepz"),
    ("config-wrong-type", tiny_with(syn_steps="ten"), CONDENSE_C, "syn_steps must be int"),
    ("config-null", tiny_with(iterations=None), CONDENSE_C, "iterations must be int"),
    ("config-bool-for-float", tiny_with(rho=True), CONDENSE_C, "rho must be float"),
    ("config-truncate-beyond-steps", tiny_with(truncate=9), CONDENSE_C, "truncate (9) exceeds syn_steps (3)"),
    ("config-expert-not-object", tiny_with(expert="x"), CONDENSE_C, "expert must be"),
    ("config-expert-unknown-key", tiny_expert_with(epochz=3), CONDENSE_C, "unknown expert config keys: epochz"),
    ("config-expert-wrong-type", tiny_expert_with(epochs="3"), CONDENSE_C, "epochs must be int"),
    ("config-expert-lr-zero", tiny_expert_with(lr=0), CONDENSE_C, "lr must be > 0"),
    ("config-unknown-minimizer", tiny_with(minimizer="adam"), CONDENSE_C, "adam"),
    ("config-unknown-dsa", tiny_with(dsa="color_blur"), CONDENSE_C, "blur"),
    ("config-unknown-arch", tiny_expert_with(arch="gpt"), CONDENSE_C, "gpt"),
    ("config-bad-arch-kwargs", tiny_expert_with(arch_kwargs={"wdith": 8}), CONDENSE_C, "wdith"),
    ("config-horizon-too-long", tiny_with(max_start_epoch=3), CONDENSE_C, "exceeds the experts' 3 epochs"),
    ("config-ipc-too-large", tiny_with(ipc=500), CONDENSE_C, "fewer than ipc=500"),
    # ---- artifacts
    ("art-missing", NOTHING, [*EVAL_ART[:2], "{ws}/nope", *EVAL_ART[3:]], "not a synthetic set"),
    ("art-is-file", NOTHING, ["show", "{ws}/file.txt"], "not a synthetic set"),
    ("art-meta-not-json", write("art/synthetic.json", "{"), EVAL_ART, "unreadable metadata"),
    ("art-meta-a-list", write("art/synthetic.json", "[]"), EVAL_ART, "lacks"),
    ("art-meta-missing-key", lambda ws: edit_json(ws / "art" / META_FILE, lambda d: {k: v for k, v in d.items() if k != "ipc"}), EVAL_ART, "lacks ipc"),
    ("art-format-version", lambda ws: edit_json(ws / "art" / META_FILE, set_key("format_version", 99)), EVAL_ART, "format version 99"),
    ("art-sha-mismatch", lambda ws: (ws / "art" / TENSOR_FILE).write_bytes((ws / "art" / TENSOR_FILE).read_bytes()[:-1] + b"\x01"), EVAL_ART, "SHA-256"),
    ("art-nan-pixel", retensor(images=nan_pixel), EVAL_ART, "NaN or infinite"),
    ("art-lr-zero", retensor(lr=lambda t: torch.zeros_like(t)), EVAL_ART, "learned lr"),
    ("art-lr-inf", retensor(lr=lambda t: torch.full_like(t, float("inf"))), EVAL_ART, "learned lr"),
    ("art-labels-out-of-range", retensor(labels=lambda t: t + 5), EVAL_ART, "labels outside"),
    ("art-images-int", retensor(images=lambda t: t.to(torch.int32)), EVAL_ART, "float32"),
    ("art-wrong-shape", retensor(images=lambda t: t[..., :4, :4].contiguous()), EVAL_ART, "do not match"),
    ("art-zca-absent", lambda ws: edit_json(ws / "art" / META_FILE, set_key("zca", True)), EVAL_ART, "zca=True"),
    ("art-truncated-tensors", lambda ws: raw_tensor_file((ws / "art" / TENSOR_FILE).read_bytes()[:50])(ws), EVAL_ART, "unreadable tensor file"),
    ("art-hostile-header", raw_tensor_file(struct.pack("<Q", 2**62) + b"{}"), EVAL_ART, "unreadable tensor file"),
    ("art-other-dataset", lambda ws: edit_json(ws / "art" / META_FILE, set_key("dataset", "mnist5k")), [*EVAL_ART, "--dataset", "digits"], "not on --dataset digits"),
    ("art-bad-arch-kwargs", lambda ws: edit_json(ws / "art" / META_FILE, set_key("arch_kwargs", {"wdith": 3})), EVAL_ART, "wdith"),
    ("art-bad-config-dsa", lambda ws: edit_json(ws / "art" / META_FILE, lambda d: {**d, "config": {**d["config"], "dsa": 5}}), EVAL_ART, "dsa"),
    ("art-continual-memory-nan", retensor(images=nan_pixel), [*CONTINUAL, "--memories", "satm", "--synthetic", "{ws}/art"], "NaN or infinite"),
    # ---- expert stores (condense against the tiny store in the workspace cache)
    ("store-manifest-not-json", lambda ws: (store_dir(ws) / "manifest.json").write_text("{"), CONDENSE, "unreadable expert manifest"),
    ("store-manifest-other-settings", manifest(lambda m: {**m, "config": {**m["config"], "lr": 9.0}}), CONDENSE, "settings differ"),
    ("store-experts-not-object", manifest(set_key("experts", [1, 2])), CONDENSE, "unreadable expert manifest"),
    ("store-numel-not-int", manifest(set_key("numel", "many")), CONDENSE, "unreadable expert manifest"),
    ("store-format-version", manifest(set_key("format_version", 7)), CONDENSE, "format version"),
    ("store-expert-garbage", expert_file(lambda raw: b"garbage" * 10), CONDENSE, "expert file"),
    ("store-expert-wrong-shape", expert_file(wrong_shape_expert), CONDENSE, "does not match its manifest"),
    # ---- records files
    ("records-not-json", write("bad.jsonl", "{nope\n"), REPORT, "not a JSON record"),
    ("records-missing-keys", write("bad.jsonl", json.dumps({"stage": "x"}) + "\n"), REPORT, "record lacks"),
    ("records-a-list", write("bad.jsonl", "[1, 2]\n"), REPORT, "record lacks"),
    ("records-empty", write("bad.jsonl", ""), REPORT, "no records in"),
    ("records-missing-file", NOTHING, REPORT, "records file not found"),
    ("records-binary", write("bad.jsonl", b"\xff\xfe\xfa\n"), REPORT, "cannot read records file"),
    ("records-value-text", write("bad.jsonl", json.dumps({**RECORD, "seed": 0, "metric": "m", "value": "high"}) + "\n"), REPORT, "value"),
    ("records-seed-text", write("bad.jsonl", json.dumps({**RECORD, "seed": "zero", "metric": "m", "value": 1.0}) + "\n"), REPORT, "seed"),
    ("records-corrupt-eval-out", write("evalout/records.jsonl", "{torn\n"), EVAL_RANDOM, "not a JSON record"),
    ("records-continual-other-settings", write("evalout/records.jsonl", json.dumps({**RECORD, "stage": "continual", "arch": "convnet", "seed": 0, "metric": "forgetting", "value": 1.0, "step": 5, "config": {"protocol": "naive"}}) + "\n"), [*CONTINUAL, "--epochs", "1"], "other settings"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "args", "expect"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(
    case: str, mutate: Callable[[Path], None], args: list[str], expect: str, ws: Path, tally: Any
) -> None:
    mutate(ws)
    _, err, _, _ = invoke(tally, case, ws, args)
    assert expect in err, f"{case}: {err!r}"


def test_the_suite_is_broad() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 30
    kinds = {c[0].split("-")[0] for c in CASES}
    assert {"opt", "out", "config", "art", "store", "data", "records"} <= kinds


# ------------------------------------------------------------------ hypothesis: artifact mutations
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
HYPO = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _fresh(template: Path, tmp_path: Path, n: list[int]) -> Path:
    n[0] += 1
    work = tmp_path / f"h{n[0]}"
    shutil.copytree(template, work)
    return work


@HYPO
@given(data=st.data())
def test_mutated_metadata_is_refused_or_used_cleanly(
    data: st.DataObject, template: Path, tmp_path: Path, tally: Any
) -> None:
    work = _fresh(template, tmp_path, _COUNTER)
    meta = json.loads((work / "art" / META_FILE).read_text())
    key = data.draw(st.sampled_from(sorted(meta)), label="key")
    if data.draw(st.booleans(), label="delete"):
        del meta[key]
    else:
        meta[key] = data.draw(JSON, label="value")
    (work / "art" / META_FILE).write_text(json.dumps(meta))
    invoke(tally, "hypothesis-metadata", work, _eval_into(work), accept_success=True)


@HYPO
@given(data=st.data())
def test_mutated_tensor_bytes_are_refused_or_used_cleanly(
    data: st.DataObject, template: Path, tmp_path: Path, tally: Any
) -> None:
    work = _fresh(template, tmp_path, _COUNTER)
    raw = bytearray((work / "art" / TENSOR_FILE).read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")
    where = data.draw(st.sampled_from(["length", "header", "data", "cut"]), label="where")
    if where == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="keep")]
    else:
        lo, hi = {"length": (0, 8), "header": (8, header), "data": (header, len(raw))}[where]
        for _ in range(data.draw(st.integers(1, 4), label="count")):
            raw[data.draw(st.integers(lo, hi - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
    (work / "art" / TENSOR_FILE).write_bytes(bytes(raw))
    reseal(work / "art")
    invoke(tally, "hypothesis-tensor-bytes", work, _eval_into(work), accept_success=True)


_COUNTER = [0]


def _eval_into(work: Path) -> list[str]:
    """Evaluate the mutated artifact into a new directory (an accepted mutation may write records there)."""
    return ["evaluate", "--synthetic", str(work / "art"), "--runs", "1", "--epochs", "1", "--device", "cpu",
            "--out", str(work / "mutated-eval")]  # fmt: skip


def test_a_torn_last_record_is_mended_not_fatal(tmp_path: Path) -> None:
    """What a kill mid-append leaves (a last line without its newline) does not stop the rerun."""
    from satm_cl.records import RecordWriter, read_records

    path = tmp_path / "records.jsonl"
    whole = json.dumps({**RECORD, "seed": 0, "metric": "m", "value": 1.0})
    path.write_text(whole + "\n" + whole[:20])
    RecordWriter(path)
    assert path.read_text() == whole + "\n"
    path.write_text(whole)  # a whole record that only lacks its newline is kept
    RecordWriter(path).write([{**RECORD, "seed": 1, "metric": "m", "value": 2.0}])
    assert [r["seed"] for r in read_records(path)] == [0, 1]


def test_two_writers_on_one_records_file_never_duplicate_a_row(tmp_path: Path) -> None:
    """Two runs that opened the same records file and measured the same row append it once."""
    from satm_cl.records import RecordWriter, read_records

    path = tmp_path / "records.jsonl"
    first, second = RecordWriter(path), RecordWriter(path)
    row = {**RECORD, "seed": 0, "metric": "m", "value": 1.0}
    first.write([row])
    second.write([row, {**row, "seed": 1}])
    assert [r["seed"] for r in read_records(path)] == [0, 1]
