"""Executors: the same evaluate grid gives the same records locally, on a local pool and on a real Ray;
failed jobs are reported while the others finish; reruns skip finished jobs; dead workers are retried;
concurrent writers to one records file or expert store lose nothing; a two-node Ray cluster (slow)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import satm_cl.evaluate.runner as eval_runner
from satm_cl.evaluate import EvalRequest, run_evaluation
from satm_cl.execution import ExecConfig, Job, JobsFailed, list_executors, raise_failures, run_jobs
from satm_cl.experts.store import TrajectoryStore, store_path
from satm_cl.io import sha256_file
from satm_cl.records import RecordWriter, read_records

TINY = {"runs": 2, "epochs": 2, "device": "cpu", "progress": False}


def _request(out: Path, **kw: Any) -> EvalRequest:
    base: dict[str, Any] = {
        "synthetic": None,
        "baseline": "random",
        "dataset": "digits",
        "ipc": 1,
        "suites": ("in-domain", "cross-arch"),
        "archs": ("convnet", "mlp"),
        "out": out,
        **TINY,
    }
    return EvalRequest(**{**base, **kw})


def _records_text(out: Path) -> str:
    """The records file with its own directory masked (baseline records name their artifact's path)."""
    return (out / "records.jsonl").read_text().replace(str(out), "OUT")


# ---------------------------------------------------------------- job functions (picklable by reference)
def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad input {x}\nsecond line")
    return x


def die_once(marker: str) -> str:
    """Kills its own worker process the first time (a crash mid-task), succeeds when re-run."""
    if not os.path.exists(marker):
        Path(marker).write_text("died")
        os._exit(9)
    return "ok"


def threads_seen(_: Any) -> int:
    return torch.get_num_threads()


def append_records(args: tuple[str, int]) -> None:
    path, worker = args
    writer = RecordWriter(path)
    for i in range(40):  # half the keys shared by both workers, half their own
        key = i if i % 2 else 1000 * worker + i
        writer.write(
            [
                {
                    "stage": "t",
                    "method": "m",
                    "dataset": "d",
                    "ipc": 1,
                    "arch": "a",
                    "seed": key,
                    "metric": "x",
                    "value": float(i),
                }
            ]
        )


# ---------------------------------------------------------------- local executor
def test_registry_lists_both_executors() -> None:
    assert {"local", "ray"} <= set(list_executors())
    with pytest.raises(Exception, match="unknown executor 'nope'; valid: local, ray"):
        run_jobs([Job("x", square, 1)], ExecConfig(executor="nope"))


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_job_is_reported_and_the_others_finish(workers: int) -> None:
    jobs = [Job(f"job x={x}", fail_on_three, x) for x in range(5)]
    committed: list[int] = []
    results = run_jobs(jobs, ExecConfig(jobs=workers), lambda r: committed.append(r.job.spec))
    assert [r.value for r in results] == [0, 1, 2, None, 4]
    assert sorted(committed) == [0, 1, 2, 3, 4]  # each once, as it finished
    assert results[3].error == "ValueError: bad input 3"
    with pytest.raises(JobsFailed) as info:
        raise_failures(results)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("1 of 5 jobs failed")
    assert lines[1:] == ["failed: job x=3 (after 1 attempt(s)): ValueError: bad input 3"]


def wait_for(marker: str) -> str:
    """Waits (up to 30 s) for a file the driver writes when it commits another job."""
    deadline = time.monotonic() + 30
    while not os.path.exists(marker):
        if time.monotonic() > deadline:
            return "timed out"
        time.sleep(0.05)
    return "saw it"


def test_a_finished_job_is_committed_while_an_earlier_one_still_runs(tmp_path: Path) -> None:
    """A slow job never holds a finished one's result back from the driver (a grid killed while its first
    job runs for hours must still have saved the others): the first job here ends only once the driver
    has committed the second."""
    marker = tmp_path / "fast-committed"
    jobs = [Job("slow", wait_for, str(marker)), Job("fast", square, 3)]
    seen: list[str] = []

    def commit(result: Any) -> None:
        seen.append(result.job.label)
        if result.job.label == "fast":
            marker.write_text("")

    results = run_jobs(jobs, ExecConfig(jobs=2), commit)
    assert seen == ["fast", "slow"]
    assert [r.value for r in results] == ["saw it", 9]  # still returned in the grid's order


def test_each_job_runs_with_the_configured_torch_threads() -> None:
    before = torch.get_num_threads()
    assert [r.value for r in run_jobs([Job("t", threads_seen, None)], ExecConfig(threads=2))] == [2]
    assert torch.get_num_threads() == before  # the in-process executor restores the driver's count


def test_dead_worker_is_retried_on_a_fresh_pool(tmp_path: Path) -> None:
    jobs = [Job("dies", die_once, str(tmp_path / "marker")), Job("sq", square, 3)]
    results = run_jobs(jobs, ExecConfig(jobs=2, retries=1))
    assert [r.value for r in results] == ["ok", 9] and results[0].attempts == 2
    again = run_jobs([Job("dies", die_once, str(tmp_path / "other"))], ExecConfig(jobs=2, retries=0))
    assert not again[0].ok and again[0].error == "worker died (retries exhausted)"


def test_concurrent_record_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    ctx = multiprocessing.get_context("fork")  # the children only append lines: no torch threads involved
    procs = [ctx.Process(target=append_records, args=((str(path), w),)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    seeds = [r["seed"] for r in read_records(path)]
    expected = {i for i in range(40) if i % 2} | {1000 * w + i for w in range(3) for i in range(0, 40, 2)}
    assert len(seeds) == len(set(seeds)) and set(seeds) == expected  # no row lost, none duplicated


def add_expert(args: tuple[str, int]) -> None:
    path, index = args
    store = TrajectoryStore.open(Path(path))
    traj = torch.full((store.epochs + 1, int(store.manifest["numel"])), float(index))
    store.add(index, traj, {"train": [1.0], "val": [1.0], "test": [1.0]})


def test_concurrent_store_writers_lose_nothing(tmp_path: Path) -> None:
    from satm_cl.experts.config import ExpertConfig

    cfg = ExpertConfig(epochs=1)
    store = TrajectoryStore.create_or_open(tmp_path, cfg, {"shapes": [[3]], "names": ["w"]}, {})
    ctx = multiprocessing.get_context("fork")  # tiny CPU tensors only
    with ctx.Pool(2) as pool:
        pool.map(add_expert, [(str(store.path), i) for i in range(6)])
    assert TrajectoryStore.open(tmp_path).done() == list(range(6))


def test_evaluate_failure_is_reported_and_rerun_does_only_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = eval_runner.evaluate_runs

    def broken_seed_0(syn: Any, arch: str, tests: Any, epochs: int, seeds: Any, *a: Any, **kw: Any) -> Any:
        if 0 in seeds and arch == "mlp":
            raise RuntimeError("out of memory")
        return real(syn, arch, tests, epochs, seeds, *a, **kw)

    monkeypatch.setattr(eval_runner, "evaluate_runs", broken_seed_0)
    req = _request(tmp_path)
    with pytest.raises(JobsFailed, match=r"failed: evaluate random digits arch=mlp seed=0 .*out of memory"):
        run_evaluation(req)
    # convnet's runs train stacked as one job, mlp's one by one: only mlp seed 0 is lost
    assert len(read_records(tmp_path / "records.jsonl")) == 5
    monkeypatch.setattr(eval_runner, "evaluate_runs", real)
    dispatched: list[int] = []
    real_run_jobs = eval_runner.run_jobs

    def counting(jobs: Any, *a: Any) -> Any:
        dispatched.append(len(jobs))
        return real_run_jobs(jobs, *a)

    monkeypatch.setattr(eval_runner, "run_jobs", counting)
    run_evaluation(req)
    run_evaluation(req)
    assert dispatched == [1, 0] and len(read_records(tmp_path / "records.jsonl")) == 6
    # the lost job's rows, made after its successor's, go back to their place in the grid: the same bytes as
    # a run that never failed
    whole = _request(tmp_path / "whole")
    assert _records_text(tmp_path) == _records_text(Path(run_evaluation(whole)).parent)


# ---------------------------------------------------------------- a real local Ray (2 CPUs, loopback)
@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'satm-cl[ray]')")
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # loopback only; leaves no ~/.ray/auth_token behind
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    try:
        yield ray
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before


def test_evaluate_grid_is_identical_under_every_executor(tmp_path: Path, local_ray: Any) -> None:
    texts = {}
    for name, cfg in {
        "local": ExecConfig(),
        "local2": ExecConfig(jobs=2),
        "ray": ExecConfig(executor="ray"),
    }.items():
        texts[name] = _records_text(Path(run_evaluation(_request(tmp_path / name), cfg)).parent)
    assert texts["local"] == texts["local2"] == texts["ray"]
    recs = read_records(tmp_path / "ray" / "records.jsonl")
    assert len(recs) == 6 and all(r["config"]["torch_threads"] == 1 for r in recs)
    # a rerun on Ray dispatches nothing and leaves the file as it was
    before = (tmp_path / "ray" / "records.jsonl").read_bytes()
    run_evaluation(_request(tmp_path / "ray"), ExecConfig(executor="ray"))
    assert (tmp_path / "ray" / "records.jsonl").read_bytes() == before


def test_ray_reports_a_failing_job_and_finishes_the_others(local_ray: Any) -> None:
    jobs = [Job(f"job x={x}", fail_on_three, x) for x in range(6)]
    results = run_jobs(jobs, ExecConfig(executor="ray"))
    assert [r.value for r in results] == [0, 1, 2, None, 4, 5]
    assert [r.error for r in results if not r.ok] == ["ValueError: bad input 3"]


def test_ray_retries_a_killed_worker(tmp_path: Path, local_ray: Any) -> None:
    results = run_jobs([Job("dies", die_once, str(tmp_path / "m"))], ExecConfig(executor="ray", retries=1))
    assert results[0].value == "ok"


def _cli(args: list[str], tmp: Path, ray_tmp: str | None = None) -> subprocess.CompletedProcess[str]:
    """`satm-cl ARGS` in a fresh process, loopback Ray (its files under `ray_tmp` if given), one thread."""
    return subprocess.run(
        [sys.executable, "-m", "satm_cl.cli", *args],
        env={**_ray_env(tmp), **({"RAY_TMPDIR": ray_tmp} if ray_tmp else {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_on_ray_starts_ray_while_planning_and_matches_local(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'satm-cl[ray]')")
    base = ["evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1", "--suite", "in-domain"]
    base += ["--runs", "2", "--epochs", "3", "--device", "cpu"]
    # the local reference is made in this process (the command line's local executor is run by tests/cli):
    # the same request, so the records must be the same bytes
    local = _request(tmp_path / "local", suites=("in-domain",), archs=None, runs=2, epochs=3)
    texts = {"local": _records_text(Path(run_evaluation(local)).parent)}
    temp = tempfile.mkdtemp(prefix="satm-ray-")  # this run's Ray files (short: socket paths live under it)
    try:
        done = _cli([*base, "--out", str(tmp_path / "ray"), "--executor", "ray"], tmp_path, temp)
        assert done.returncode == 0, done.stderr[-2000:]
        texts["ray"] = _records_text(tmp_path / "ray")
        assert texts["local"] == texts["ray"] and texts["ray"].count("\n") == 2
        # the command ended its local Ray without the orderly shutdown: nothing of it may be left running
        deadline = time.monotonic() + 10
        while _alive_under(temp) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _alive_under(temp) == []
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _alive_under(temp: str) -> list[str]:
    """Live (not zombie) processes of the Ray whose files are under `temp`: by environment (workers) or
    by open log files (Ray's agents rewrite their command line and drop the environment)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if proc.environ().get("RAY_TMPDIR") == temp or any(
                f.path.startswith(temp) for f in proc.open_files()
            ):
                found.append(f"{proc.pid} {proc.info['name']}")
    return found


def test_cli_refuses_a_ray_address_nobody_answers_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'satm-cl[ray]')")
    port = _free_port()
    args = ["evaluate", "--baseline", "random", "--dataset", "digits", "--suite", "in-domain"]
    for address, says in ((f"127.0.0.1:{port}", "no Ray head answers"), ("nocolon", "HEAD_IP:PORT")):
        t0 = time.monotonic()
        done = _cli(
            [*args, "--out", str(tmp_path / "out"), "--executor", "ray", "--ray-address", address], tmp_path
        )
        assert done.returncode == 2 and time.monotonic() - t0 < 60
        assert done.stderr.strip().count("\n") == 0 and says in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- two Ray nodes on this machine (slow)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_env(tmp: Path) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "RAY_AUTH_MODE": "disabled",  # loopback only; a stale ~/.ray/auth_token would refuse the join
        "SATM_CL_CACHE": str(tmp / "cache"),
    }


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _task_pids() -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and cmd[0].startswith("ray::call_job"):
            pids.append(proc.pid)
    return pids


def _stop_cluster(marks: list[str]) -> None:
    """End the processes of the cluster this test started (found by its port and temp dir), by pid."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if proc.pid != os.getpid() and any(m in cmd for m in marks):
            found.append(proc)
    found += [c for p in list(found) for c in p.children(recursive=True)]
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(found, timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


@pytest.mark.slow
def test_two_node_cluster_experts_grid_survives_a_killed_worker(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'satm-cl[ray]')")
    env = _ray_env(tmp_path)
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="satm-ray-"))  # short: Ray's socket paths live under it
    head = [_ray_cli(), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    head += ["--num-cpus", "1", "--include-dashboard", "false", "--temp-dir", str(temp)]
    node = [_ray_cli(), "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1"]
    node += ["--num-cpus", "1"]
    cmd = [sys.executable, "-m", "satm_cl.cli", "experts", "--num-experts", "4", "--epochs", "25"]
    cmd += ["--executor", "ray", "--ray-address", f"127.0.0.1:{port}"]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=180)
        subprocess.run(node, env=env, check=True, capture_output=True, timeout=180)
        driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed = None
        deadline = time.time() + 300
        while killed is None and time.time() < deadline and driver.poll() is None:
            pids = _task_pids()
            if len(pids) == 2:  # both nodes busy with an expert: kill one mid-task
                time.sleep(1.0)
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.2)
        _, err = driver.communicate(timeout=900)
        assert killed is not None, f"never saw two running expert tasks: {err[-2000:]}"
        assert driver.returncode == 0, err[-2000:]
    finally:
        _stop_cluster([str(temp), f"127.0.0.1:{port}"])
        shutil.rmtree(temp, ignore_errors=True)
    stores = list((tmp_path / "cache" / "experts").iterdir())
    assert len(stores) == 1
    store = TrajectoryStore.open(stores[0])
    assert store.done() == [0, 1, 2, 3]  # every expert listed and its file matching its SHA-256
    assert all(store.manifest["experts"][str(i)]["sha256"] == sha256_file(store.file(i)) for i in range(4))
    assert store.manifest["experts"]["0"]["torch_threads"] == 1
    # the same experts trained in this process, one after the other, have the same bytes
    local = tmp_path / "local"
    from satm_cl.config import resolve_config
    from satm_cl.experts.train import train_experts

    cfg = replace(resolve_config("digits", 1).expert, num_experts=4, epochs=25)
    train_experts(cfg, local, torch.device("cpu"), progress=False, executor=ExecConfig())
    mine = TrajectoryStore.open(store_path(local, cfg))
    assert {i: mine.manifest["experts"][str(i)]["sha256"] for i in range(4)} == {
        i: store.manifest["experts"][str(i)]["sha256"] for i in range(4)
    }


# ---------------------------------------------------------------- the command line
def test_cli_unknown_executor_and_failed_jobs_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from satm_cl.cli import app

    base = ["evaluate", "--baseline", "random", "--dataset", "digits", "--ipc", "1", "--runs", "2"]
    base += ["--epochs", "1", "--device", "cpu", "--out", str(tmp_path)]
    bad = CliRunner().invoke(app, [*base, "--executor", "dask"])
    assert bad.exit_code == 2 and "unknown executor 'dask'; valid: local, ray" in bad.output

    def boom(*a: Any, **kw: Any) -> dict[str, float]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(eval_runner, "evaluate_runs", boom)
    failed = CliRunner().invoke(app, [*base, "--archs", "convnet,mlp", "--suite", "cross-arch"])
    assert failed.exit_code == 2
    lines = [line for line in failed.output.splitlines() if line.startswith("failed: ")]
    assert lines == [  # convnet's two runs train stacked as one job; mlp's one by one
        f"failed: evaluate random digits arch={arch} seed={s} (after 1 attempt(s)): RuntimeError: disk full"
        for arch, s in (("convnet", "0,1"), ("mlp", "0"), ("mlp", "1"))
    ]


def test_killed_driver_leaves_no_pool_worker_running(tmp_path: Path) -> None:
    """SIGKILL of a `--jobs 2` driver: its workers stop too (they would otherwise compute on, unseen)."""
    psutil = pytest.importorskip("psutil")
    code = (
        "import time\n"
        "from satm_cl.execution import ExecConfig, Job, run_jobs\n"
        "run_jobs([Job(f'nap {i}', time.sleep, 60.0) for i in range(2)], ExecConfig(jobs=2))\n"
    )
    driver = subprocess.Popen([sys.executable, "-c", code], env=_ray_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        workers: list[Any] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [
                c
                for c in psutil.Process(driver.pid).children(recursive=True)
                if "resource_tracker" not in " ".join(c.cmdline())
            ]
        assert len(workers) == 2, "the pool never started its two workers"
        time.sleep(2)  # past the initializer
        driver.kill()
        driver.wait(timeout=10)
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers still running after the driver was killed: {alive}"
    finally:
        if driver.poll() is None:
            driver.kill()
