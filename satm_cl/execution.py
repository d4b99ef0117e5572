"""Run a grid of independent jobs: in this process, on a local process pool, or on a Ray cluster.

A `Job` is a module-level function and a picklable spec; it returns a picklable value (records,
an expert's summary) and may write through the atomic, locked stores itself. Every executor returns
one `JobResult` per job in the grid's order, whatever order the jobs finished in, and hands each to
the driver's `commit` as soon as it finishes: a job never waits on a slower earlier one to be saved, so
an interrupted grid keeps everything that finished. Drivers that write records put them back in the
grid's order at the end (`RecordWriter.reorder`), so the bytes do not depend on the executor or the
worker count.
Each job runs with an explicit torch thread count (`ExecConfig.threads`), because float results
depend on it. A job that raises becomes a failed result (the others go on); a job whose worker
died is re-run up to `ExecConfig.retries` times.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from satm_cl.allocator import release_free_memory
from satm_cl.errors import SatmError
from satm_cl.progress import line_every, line_mode, warning_lines
from satm_cl.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One unit of a grid: `fn(spec)` with the resources it needs; `label` names it in reports."""

    label: str
    fn: Callable[[Any], Any]
    spec: Any
    cpus: float | None = None  # None: ExecConfig.threads
    gpus: float | None = None  # None: ExecConfig.gpus


@dataclass(frozen=True)
class JobResult:
    """What one job gave: its value, or the one-line error it failed with, and how often it ran."""

    job: Job
    value: Any = None
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ExecConfig:
    """Which executor runs a grid and with what: workers, torch threads per job, retries, Ray address."""

    executor: str = "local"
    jobs: int = 1  # local: worker processes (1 = in this process); ray: ignored (the cluster decides)
    ray_address: str | None = None  # None: start a local Ray on this machine
    threads: int = 1  # torch intra-op threads per job (bytes depend on it); also the CPUs a task asks for
    gpus: float = 0.0  # GPUs a Ray task asks for (set 1 with --device cuda on a GPU cluster)
    retries: int = 2  # re-runs of a job whose worker died (a job that raises is not retried)

    def describe(self) -> dict[str, Any]:
        """What a record keeps about how it was computed (only what can change its bytes)."""
        return {"torch_threads": self.threads}


Commit = Callable[[JobResult], None]


class Executor(Protocol):
    def __call__(self, jobs: Sequence[Job], cfg: ExecConfig, commit: Commit) -> list[JobResult]: ...


EXECUTORS: Registry[Executor] = Registry("executor")


def list_executors() -> list[str]:
    """Executor names accepted by `--executor`."""
    return EXECUTORS.names()


def check_exec_config(cfg: ExecConfig) -> None:
    """A one-line SatmError naming the grid option out of range (checked before any planning)."""
    for name, value, least in (("--jobs", cfg.jobs, 1), ("--threads", cfg.threads, 1),
                               ("retries", cfg.retries, 0)):
        if value < least:
            raise SatmError(f"{name} must be >= {least}, got {value}")


def run_jobs(
    jobs: Sequence[Job], cfg: ExecConfig | None = None, commit: Commit | None = None
) -> list[JobResult]:
    """Run `jobs` with the executor `cfg` names; `commit` sees every result (failed ones too) as soon as its
    job finishes; the results come back in the order of `jobs`."""
    cfg = cfg or ExecConfig()
    check_exec_config(cfg)
    line_every()  # a bad progress interval is refused here, not once per job in the workers
    executor = EXECUTORS.get(cfg.executor)
    return executor(list(jobs), cfg, commit or (lambda _r: None)) if jobs else []


class _Finished:
    """Results as they finish: each is committed at once; `ordered()` gives them back in the grid's order."""

    def __init__(self, n: int, commit: Commit) -> None:
        self.results: dict[int, JobResult] = {}
        self._n, self._commit = n, commit

    def add(self, i: int, result: JobResult) -> None:
        self.results[i] = result
        self._commit(result)

    def __contains__(self, i: int) -> bool:
        return i in self.results

    def __len__(self) -> int:
        return len(self.results)

    def ordered(self) -> list[JobResult]:
        return [self.results[i] for i in range(self._n)]


class JobsFailed(SatmError):
    """Some jobs of a grid failed (the others finished and were saved); one line per failure."""


def raise_failures(results: Sequence[JobResult]) -> None:
    """A JobsFailed listing every failed job with its inputs and error, if any failed."""
    bad = [r for r in results if not r.ok]
    if bad:
        lines = [f"failed: {r.job.label} (after {r.attempts} attempt(s)): {r.error}" for r in bad]
        head = f"{len(bad)} of {len(results)} jobs failed; finished work is saved, rerun to retry"
        raise JobsFailed("\n".join([head, *lines]))


def call_job(fn: Callable[[Any], Any], spec: Any, threads: int, label: str | None = None) -> tuple[bool, Any]:
    """Worker side: run `fn(spec)` with `threads` torch threads; an exception becomes (False, one line).
    `label` (pool and Ray workers): the job's progress bars and package warnings become lines prefixed with
    it (`progress`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if label is not None:
            line_mode(f"[{label}]")
            warning_lines(f"[{label}] ")
        return True, fn(spec)
    except Exception as exc:  # reported with the job's inputs by the driver; the grid goes on
        text = str(exc).strip().splitlines()
        return False, f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    finally:
        torch.set_num_threads(before)
        release_free_memory()  # a pool or Ray worker lives on to the next job: start it from a lean heap


def _result(job: Job, outcome: tuple[bool, Any], attempts: int) -> JobResult:
    ok, value = outcome
    return JobResult(job, value if ok else None, None if ok else str(value), attempts)


@EXECUTORS.register("local")
def run_local(jobs: Sequence[Job], cfg: ExecConfig, commit: Commit) -> list[JobResult]:
    """`--jobs 1`: one after the other in this process; `--jobs N`: N spawned worker processes."""
    if cfg.jobs > 1:
        return _run_pool(jobs, cfg, commit)
    done = _Finished(len(jobs), commit)
    for i, job in enumerate(jobs):
        done.add(i, _result(job, call_job(job.fn, job.spec, cfg.threads), 1))
    return done.ordered()


def _die_with_parent() -> None:
    """Pool worker initializer: on Linux, ask the kernel to stop this worker when the driver dies (a
    killed `--jobs N` command must not leave its workers computing); elsewhere, nothing."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the driver died before the request took effect
        os._exit(1)


def _run_pool(jobs: Sequence[Job], cfg: ExecConfig, commit: Commit) -> list[JobResult]:
    """A spawn process pool (fork after torch has started threads can hang); a dead worker breaks the
    pool, so every unfinished job is charged an attempt and resubmitted to a fresh pool."""
    results = _Finished(len(jobs), commit)
    attempts = dict.fromkeys(range(len(jobs)), 0)
    ctx = multiprocessing.get_context("spawn")
    while len(results) < len(jobs):
        pending = [i for i in range(len(jobs)) if i not in results]
        workers = min(cfg.jobs, len(pending))
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent) as pool:
            futures: dict[Future[Any], int] = {}
            for i in pending:
                attempts[i] += 1
                futures[pool.submit(call_job, jobs[i].fn, jobs[i].spec, cfg.threads, jobs[i].label)] = i
            waiting = set(futures)
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = futures[fut]
                    try:
                        results.add(i, _result(jobs[i], fut.result(), attempts[i]))
                    except BrokenProcessPool:
                        if attempts[i] > cfg.retries:
                            why = "worker died (retries exhausted)"
                            results.add(i, JobResult(jobs[i], None, why, attempts[i]))
                        else:
                            log.warning("worker died during %s; retrying", jobs[i].label)
                    except Exception as exc:  # e.g. an unpicklable value
                        results.add(i, JobResult(jobs[i], None, f"{type(exc).__name__}: {exc}", attempts[i]))
    return results.ordered()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SatmError("--executor ray needs Ray: pip install 'satm-cl[ray]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT nobody answers on is one line now (Ray itself retries for minutes, logging as it goes)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        if address == "auto":
            return  # Ray's own lookup of a cluster started on this machine
        raise SatmError(f"--ray-address must look like HEAD_IP:PORT (or auto), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise SatmError(
            f"no Ray head answers at {address} ({why}); start one with `ray start --head` "
            "or leave out --ray-address to start a local Ray"
        ) from None


def _ray_init(ray: Any, address: str | None) -> None:
    """Join `address`, else start a local Ray (loopback, no dashboard)."""
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is not None:
        _check_reachable(address)
        ray.init(address=address, **common)
    else:
        # Ray starts its workers at nice 15 by default; grid jobs are the work, so they compete like the
        # local executor's (on a busy machine, niced jobs starve). A user's own setting wins.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(_node_ip_address="127.0.0.1", **common)


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Use the Ray this process is connected to (or being connected to by `start_early`), else join
    `address`, else start a local one; a Ray started here is shut down on exit."""
    if _EARLY is not None:
        _EARLY.wait()
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        _ray_init(ray, address)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _warm_worker() -> None:
    """Import what every job needs (torch, the training code) so the first real task finds it loaded."""
    import satm_cl.training  # noqa: F401  (imports torch)


class _NotMainThread(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "not the main thread" not in record.getMessage()


class _EarlyRay:
    """Connects to (or starts) Ray on a background thread while the driver plans its grid, then warms one
    worker per local CPU. The thread stays alive until exit: Ray ties the processes of a local Ray to the
    thread that started them (parent-death signal), and stops them at exit."""

    def __init__(self, cfg: ExecConfig) -> None:
        self._ready, self._stop = threading.Event(), threading.Event()
        self._error: BaseException | None = None
        self.address = cfg.ray_address
        threading.Thread(target=self._run, args=(cfg,), name="satm-ray-start", daemon=True).start()

    def _run(self, cfg: ExecConfig) -> None:
        try:
            ray = _import_ray()
            logging.getLogger("ray._private.worker").addFilter(_NotMainThread())  # Ray's own SIGTERM note
            _ray_init(ray, cfg.ray_address)
            atexit.register(self.stop)
            if cfg.ray_address is None:
                warm = ray.remote(_warm_worker).options(num_cpus=cfg.threads)
                self._warming = [warm.remote() for _ in range(max(1, _local_cpus() // cfg.threads))]
        except BaseException as exc:  # re-raised in the driver by wait()
            self._error = exc
        finally:
            self._ready.set()
        self._stop.wait()

    def wait(self) -> None:
        """Block until Ray is ready; a start-up failure is raised here, in the driver."""
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def started(self) -> bool:
        """Whether Ray came up (so there is something to stop)."""
        return self._ready.is_set() and self._error is None

    def stop(self) -> None:
        """Shut Ray down (at exit) and let the thread end."""
        if self._ready.wait(timeout=120) and self._error is None:
            import ray

            ray.shutdown()
        self._stop.set()


def _local_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_EARLY: _EarlyRay | None = None


def start_early(cfg: ExecConfig) -> None:
    """For `--executor ray`: start connecting (a local Ray: starting it and warming its workers) now, in
    the background, so Ray's start-up overlaps the driver's planning; `run_ray` waits for it. Idempotent;
    a no-op for other executors."""
    global _EARLY
    if cfg.executor == "ray" and _EARLY is None:
        if cfg.ray_address is not None:
            _check_reachable(cfg.ray_address)  # a wrong address fails before the command does any work
        _EARLY = _EarlyRay(cfg)


def exit_fast(code: int | None) -> None:
    """End the process now if it started a local Ray (returns otherwise).

    Ray's orderly shutdown stops its processes one after another (about 1.4 s here). A local Ray's
    processes (head, raylet, agents, workers) all descend from this one, so a command that has written
    everything kills them at once instead. Only for the console entry point, never in a library call."""
    if _EARLY is None or _EARLY.address is not None or not _EARLY.started():
        return
    import psutil  # a dependency of Ray

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # already gone
            child.kill()
    os._exit(code or 0)


@EXECUTORS.register("ray")
def run_ray(jobs: Sequence[Job], cfg: ExecConfig, commit: Commit) -> list[JobResult]:
    """One Ray task per job, asking for its CPUs/GPUs; Ray re-runs tasks whose worker or node died."""
    with ray_session(cfg.ray_address) as ray:
        remote = ray.remote(call_job)
        refs = {}
        for i, job in enumerate(jobs):
            opts = {
                "num_cpus": cfg.threads if job.cpus is None else job.cpus,
                "num_gpus": cfg.gpus if job.gpus is None else job.gpus,
                "max_retries": cfg.retries,
                "retry_exceptions": False,
            }
            refs[remote.options(**opts).remote(job.fn, job.spec, cfg.threads, job.label)] = i
        results = _Finished(len(jobs), commit)
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    results.add(i, _result(jobs[i], ray.get(ref), 1))
                except ray.exceptions.RayError as exc:  # worker/node died beyond the retries
                    first = str(exc).strip().splitlines()
                    why = f"{type(exc).__name__}: {first[0] if first else ''}"
                    results.add(i, JobResult(jobs[i], None, why, cfg.retries + 1))
        return results.ordered()


__all__ = [
    "EXECUTORS",
    "ExecConfig",
    "Job",
    "JobResult",
    "JobsFailed",
    "call_job",
    "list_executors",
    "raise_failures",
    "ray_session",
    "run_jobs",
    "start_early",
]
