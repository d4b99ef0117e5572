"""The outer loop: sample an expert segment, compute the (sharpness-aware) hypergradient, update
images and inner LR, validate, checkpoint. MTT is this loop with the sharpness pass and the
approximations off (`satm_cl.config.METHODS`)."""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from satm_cl.allocator import ReleaseOnGrowth
from satm_cl.allocator import current as current_allocator
from satm_cl.condense.health import set_health
from satm_cl.condense.hypergrad import HyperResult, InnerPlan, Unroller, sample_plan
from satm_cl.condense.minimizers import create_minimizer
from satm_cl.config import CondenseConfig
from satm_cl.data.dsa import DSA
from satm_cl.device import kernels
from satm_cl.errors import SatmError
from satm_cl.experts.store import TrajectoryStore
from satm_cl.experts.train import PreparedData, expert_model
from satm_cl.io import make_out_dir, sha256_file, write_json, write_tensors
from satm_cl.models import ParamLayout, create_model
from satm_cl.progress import progress_bar
from satm_cl.replay_memory import MemoryImages, require_memory
from satm_cl.seeding import derive_seed, make_generator
from satm_cl.synthetic import SyntheticSet, make_meta
from satm_cl.training import TrainConfig, train_runs

log = logging.getLogger(__name__)

CKPT_TENSORS = "checkpoint.safetensors"
CKPT_META = "checkpoint.json"
LOG_FILE = "log.jsonl"
# resident growth (MB) over which a run hands the allocator's kept pages back (`allocator.ReleaseOnGrowth`):
# bounds a long run's or a grid worker's growth; a run that does not grow never releases
RELEASE_GROWTH_MB = 1024.0


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated during this iteration; CPU: the process's peak resident set size so far
    (a high-water mark including data loading; `satm-cl bench` measures per-variant peaks apart)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class State:
    """Everything that evolves across outer iterations (and is checkpointed)."""

    x: torch.Tensor
    lr: torch.Tensor
    mom_x: torch.Tensor
    mom_lr: torch.Tensor
    generator: torch.Generator
    iteration: int = 0
    best_x: torch.Tensor | None = None
    best_lr: float = 0.0
    best_val: float = -1.0
    best_iteration: int = -1
    wall_time_s: float = 0.0


def _snapshot(st: State) -> State:
    """A copy of `st` that later in-place updates (images, momenta, the generator) leave as it is; its
    tensors on the CPU (on a GPU a large set's copies would take device memory the unroll needs)."""
    gen = torch.Generator(device=st.generator.device)
    gen.set_state(st.generator.get_state())

    def copy(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to("cpu", copy=True)

    best = None if st.best_x is None else copy(st.best_x)
    return State(copy(st.x), copy(st.lr), copy(st.mom_x), copy(st.mom_lr), gen, st.iteration, best,
                 st.best_lr, st.best_val, st.best_iteration, st.wall_time_s)


def synthetic_classes(cfg: CondenseConfig, num_classes: int) -> list[int]:
    """The classes that get synthetic images: all, or the expert config's class subset."""
    return sorted(cfg.expert.classes) if cfg.expert.classes is not None else list(range(num_classes))


def init_images(
    cfg: CondenseConfig, data: PreparedData, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """IPC images per class: random real train images (MTT's default) or Gaussian noise."""
    y = data.train_y.cpu()
    classes = synthetic_classes(cfg, data.splits.num_classes)
    labels = torch.tensor(classes).repeat_interleave(cfg.ipc)
    if cfg.init == "noise":
        return torch.randn((len(classes) * cfg.ipc, *data.splits.image_shape), generator=gen), labels
    picks = []
    for c in classes:
        idx = (y == c).nonzero().flatten()
        if idx.numel() < cfg.ipc:
            raise SatmError(f"class {c} has {idx.numel()} train images, fewer than ipc={cfg.ipc}")
        picks.append(idx[torch.randperm(idx.numel(), generator=gen)[: cfg.ipc]])
    return data.train_x.cpu()[torch.cat(picks)].clone(), labels


def image_lr(cfg: CondenseConfig, student_images: int, num_classes: int) -> float:
    """The outer step size on the images. A preset's `lr_img` was set for a whole-dataset set (ipc x all
    classes); each image's share of the student's gradient, hence of its hypergradient, goes as one over the
    images the student trains on, so a smaller set (a class subset, plus any replay memory) takes larger
    image steps at the same `lr_img`. `lr_img_scale: images` scales the step by that ratio to undo it."""
    if cfg.lr_img_scale == "none":
        return cfg.lr_img
    return cfg.lr_img * student_images / (cfg.ipc * num_classes)


class Condenser:
    """Runs one condensation (`cfg`) against an expert store, writing into `out`.

    With a replay `memory` (a memory-conditioned config), the inner loop trains on the learned images plus
    the memory's, which stay fixed: only the learned images and the LR are updated and saved, and the
    validation models train on both."""

    def __init__(
        self,
        cfg: CondenseConfig,
        store: TrajectoryStore,
        data: PreparedData,
        device: torch.device,
        out: Path,
        memory: MemoryImages | None = None,
    ) -> None:
        require_memory(cfg.expert.memory, memory, synthetic_classes(cfg, data.splits.num_classes))
        self.cfg, self.store, self.data, self.device, self.out = cfg, store, data, device, Path(out)
        # Only the first num_experts: a store grown by another run must not change this run's draws.
        self.experts = [i for i in store.done() if i < cfg.expert.num_experts]
        if len(self.experts) < cfg.expert.num_experts:
            raise SatmError(
                f"expert store {store.path} holds {len(self.experts)} of the {cfg.expert.num_experts} "
                "experts this config needs; run `satm-cl experts` (or condense, which trains them) first"
            )
        for i in self.experts:  # a damaged file is refused before the run starts, not mid-way
            store.check_file(i)
        self.model = expert_model(cfg.expert, data.splits, seed=0).to(device)
        self.layout = ParamLayout.from_module(self.model)
        if self.layout.numel != int(store.manifest["numel"]):
            raise SatmError(f"expert store {store.path} does not match architecture {cfg.expert.arch}")
        self.dsa = DSA(cfg.dsa)
        self.unroller = Unroller(self.model, self.layout, self.dsa, cfg.precision)
        self.minimizer = create_minimizer(cfg.minimizer, cfg.rho)
        classes = synthetic_classes(cfg, data.splits.num_classes)
        self.labels = torch.tensor(classes).repeat_interleave(cfg.ipc).to(device)
        # the fixed memory images follow the learned ones in every inner-loop and validation set
        self.fixed_x = None if memory is None else memory.x.to(device)
        self.inner_labels = self.labels if memory is None else torch.cat([self.labels, memory.y.to(device)])
        self.lr_img = image_lr(cfg, len(self.inner_labels), data.splits.num_classes)

    def inner_set(self, x: torch.Tensor) -> torch.Tensor:
        """The images the inner loop trains on: the learned `x`, then the fixed memory images if any."""
        return x if self.fixed_x is None else torch.cat([x, self.fixed_x])

    # ------------------------------------------------------------------ state
    def fresh_state(self) -> State:
        gen = make_generator(self.cfg.seed, "condense")
        x, _ = init_images(self.cfg, self.data, gen)
        x = x.to(self.device)
        lr = torch.tensor(self.cfg.lr_init, device=self.device)
        return State(x, lr, torch.zeros_like(x), torch.zeros_like(lr), gen)

    def save_checkpoint(self, st: State, log_lines: int) -> None:
        tensors = {
            "x": st.x,
            "lr": st.lr,
            "mom_x": st.mom_x,
            "mom_lr": st.mom_lr,
            "generator": st.generator.get_state(),
        }
        if st.best_x is not None:
            tensors["best_x"] = st.best_x
        # Tensors go to a new file named after the iteration; the JSON that names it is replaced
        # second, so a kill at any point leaves a consistent (tensor file, JSON) pair on disk.
        name = f"checkpoint-{st.iteration:07d}.safetensors"
        write_tensors(self.out / name, tensors)
        write_json(
            self.out / CKPT_META,
            {
                "tensors": name,
                "config": self.cfg.to_dict(),
                "iteration": st.iteration,
                "best_lr": st.best_lr,
                "best_val": st.best_val,
                "best_iteration": st.best_iteration,
                "wall_time_s": st.wall_time_s,
                "log_lines": log_lines,
                "sha256": sha256_file(self.out / name),
                "kernels": kernels(self.device),
            },
        )
        for old in self.out.glob("checkpoint*.safetensors"):
            if old.name != name:
                old.unlink()

    def load_checkpoint(self) -> State:
        meta_file = self.out / CKPT_META
        try:
            meta = json.loads(meta_file.read_text())
            keys = (
                "iteration",
                "best_lr",
                "best_val",
                "best_iteration",
                "wall_time_s",
                "log_lines",
                "sha256",
            )
            if not isinstance(meta, dict) or any(k not in meta for k in keys):
                raise ValueError
        except (OSError, ValueError):
            raise SatmError(f"unreadable checkpoint {meta_file}") from None
        if not _same_but_longer(meta.get("config"), self.cfg.to_dict()):
            raise SatmError(
                f"{meta_file} was made with a different config; use another --out (or delete {self.out} to "
                "start over)"
            )
        if meta["iteration"] > self.cfg.iterations:
            raise SatmError(
                f"{meta_file} is at iteration {meta['iteration']}, past the {self.cfg.iterations} asked for"
            )
        made_on, here = meta.get("kernels"), kernels(self.device)
        if made_on is not None and made_on != here:  # e.g. a checkpoint carried to another machine
            log.warning("%s was made on %s and resumes on %s: the set is valid, but its bytes will differ "
                        "from an uninterrupted run's on either (float results depend on the kernels)",
                        meta_file, made_on, here)
        tfile = self.out / str(meta.get("tensors", CKPT_TENSORS))
        if not tfile.is_file() or sha256_file(tfile) != meta.get("sha256"):
            raise SatmError(f"checkpoint {tfile} is missing or does not match {CKPT_META}")
        t = {k: v.to(self.device) if k != "generator" else v for k, v in load_file(str(tfile)).items()}
        gen = torch.Generator()
        gen.set_state(t["generator"])
        st = State(
            t["x"],
            t["lr"],
            t["mom_x"],
            t["mom_lr"],
            gen,
            meta["iteration"],
            t.get("best_x"),
            meta["best_lr"],
            meta["best_val"],
            meta["best_iteration"],
            meta["wall_time_s"],
        )
        log_file = self.out / LOG_FILE
        lines = log_file.read_text().splitlines(keepends=True) if log_file.exists() else []
        log_file.write_text("".join(lines[: meta["log_lines"]]))
        return st

    # ------------------------------------------------------------------ one outer iteration
    def hypergradients(self, st: State) -> tuple[HyperResult, torch.Tensor, torch.Tensor]:
        """Loss (at X, or at the smoothed X), and the image / LR gradients the update applies."""
        cfg, gen = self.cfg, st.generator
        expert = self.experts[int(torch.randint(len(self.experts), (1,), generator=gen))]
        start = int(torch.randint(cfg.max_start_epoch, (1,), generator=gen))
        theta0, target = self.store.load_epochs(expert, [start, start + cfg.expert_epochs]).to(self.device)
        plan: InnerPlan = sample_plan(
            self.inner_labels.numel(),
            self.data.splits.image_shape,
            cfg.syn_steps,
            cfg.batch_syn,
            self.dsa,
            gen,
            self.device,
        )
        descent_keep = cfg.truncate if cfg.truncate_descent else None

        def grad_at(x: torch.Tensor, keep: int | None, prefix: Any = None) -> HyperResult:
            res = self.unroller.hypergradient(
                self.inner_set(x),
                self.inner_labels,
                st.lr,
                theta0,
                target,
                plan,
                keep=keep,
                lr_grad=cfg.lr_grad,
                prefix=prefix,
            )
            return res if self.fixed_x is None else replace(res, grad_x=res.grad_x[: x.shape[0]])

        if cfg.minimizer == "none":
            res = grad_at(st.x, descent_keep)
            return res, res.grad_x, res.grad_lr
        # ascent pass at X (its loss is the one logged); with TR its untracked head, computed at the
        # clean X, is shared by the smoothing passes and the descent pass
        first = grad_at(st.x, cfg.truncate)
        head = first.prefix if cfg.reuse_trajectory else None
        ascent = first.grad_x
        if cfg.smooth_samples > 0 and cfg.smooth_sigma > 0:
            # Gaussian smoothing: the ascent direction is the mean gradient over X + σn_s
            grads = []
            for _ in range(cfg.smooth_samples):
                noise = torch.randn(st.x.shape, generator=gen).to(self.device)
                grads.append(grad_at(st.x + cfg.smooth_sigma * noise, cfg.truncate, head).grad_x)
            ascent = torch.stack(grads).mean(0)
        eps = self.minimizer.perturb(st.x, ascent)
        if eps is None:
            return first, first.grad_x, first.grad_lr
        second = grad_at(st.x + eps, descent_keep, head)
        return first, second.grad_x, second.grad_lr

    def step(self, st: State) -> dict[str, float]:
        """One outer iteration in place on `st`; returns the log row."""
        cfg = self.cfg
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        try:
            res, gx, glr = self.hypergradients(st)
        except torch.OutOfMemoryError:
            raise SatmError(
                f"out of memory at iteration {st.iteration + 1}; lower `truncate` (TUH keeps fewer inner "
                "steps) or `batch_syn`"
            ) from None
        finite = torch.isfinite(res.loss) and bool(torch.isfinite(gx).all()) and bool(torch.isfinite(glr))
        if not finite:
            raise SatmError(
                f"non-finite loss or gradient at iteration {st.iteration + 1}; stopped, last good checkpoint "
                f"kept in {self.out} (lower --lr-img / lr_lr or the preset's syn_steps)"
            )
        with torch.no_grad():
            st.mom_x.mul_(cfg.momentum).add_(gx)
            st.x.sub_(self.lr_img * st.mom_x)
            st.mom_lr.mul_(cfg.momentum).add_(glr)
            st.lr.sub_(cfg.lr_lr * st.mom_lr).clamp_(min=cfg.lr_floor)
        if not (bool(torch.isfinite(st.x).all()) and bool(torch.isfinite(st.lr))):
            raise SatmError(
                f"non-finite images or LR after iteration {st.iteration + 1}; last good checkpoint "
                f"kept in {self.out}"
            )
        st.iteration += 1
        seconds = time.perf_counter() - t0
        st.wall_time_s += seconds
        return {
            "iteration": st.iteration,
            "loss": float(res.loss),
            "grad_norm": float(gx.norm()),
            "lr": float(st.lr),
            "seconds": seconds,
            "peak_mem_mb": peak_memory_mb(self.device),
        }

    # ------------------------------------------------------------------ validation (val split only)
    def validate(self, st: State) -> float:
        """Mean val accuracy of fresh models trained on the current images with the learned LR."""
        cfg = self.cfg
        tcfg = TrainConfig(epochs=cfg.eval_epochs, lr=float(st.lr), batch_size=256, dsa=cfg.dsa)
        c, h, w = self.data.splits.image_shape
        seeds = [derive_seed(cfg.seed, "validate", st.iteration, run) for run in range(cfg.eval_runs)]
        models = [
            create_model(
                cfg.expert.arch, c, self.data.splits.num_classes, (h, w), seed=seed, **cfg.expert.arch_kwargs
            )
            for seed in seeds
        ]
        # stacked where it pays
        trained = train_runs(models, self.inner_set(st.x.detach()), self.inner_labels, tcfg, seeds)
        accs = trained.accuracy(self.data.val_x, self.data.val_y)
        return sum(accs) / len(accs)

    def _maybe_validate(self, st: State, row: dict[str, float]) -> None:
        cfg = self.cfg
        due = cfg.eval_every > 0 and (st.iteration % cfg.eval_every == 0 or st.iteration == cfg.iterations)
        if not due:
            return
        acc = self.validate(st)
        row["val_accuracy"] = acc
        health = set_health(st.x.detach(), self.data.train_x, float(st.lr), cfg.lr_init)
        row["pixel_std_ratio"] = round(health.pixel_std_ratio, 4)
        if cfg.select_healthy and health.problems():  # a run-off iteration is logged, never kept
            return
        if acc > st.best_val:
            st.best_val, st.best_iteration = acc, st.iteration
            st.best_x, st.best_lr = st.x.detach().clone(), float(st.lr)

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False, progress: bool = True) -> SyntheticSet:
        """Condense for cfg.iterations outer steps (continuing a checkpoint if `resume`)."""
        cfg = self.cfg
        make_out_dir(self.out)
        has_ckpt = (self.out / CKPT_META).exists()
        if has_ckpt and not resume:
            raise SatmError(
                f"{self.out} holds a checkpoint; pass --resume (resume=True in Python) to continue it, or "
                "choose another --out"
            )
        st = self.load_checkpoint() if resume and has_ckpt else self.fresh_state()
        if not (resume and has_ckpt):
            (self.out / LOG_FILE).write_text("")
            if cfg.eval_every > 0 and cfg.iterations > 0:
                row: dict[str, float] = {"iteration": 0}
                self._maybe_validate(st, row)
                # the starting images' val accuracy: the selection may keep them (iteration 0)
                (self.out / LOG_FILE).write_text(json.dumps(row) + "\n")
        log_lines = len((self.out / LOG_FILE).read_text().splitlines())
        bar = progress_bar(
            total=cfg.iterations, initial=st.iteration, desc=f"condense {cfg.method}", disable=not progress
        )
        # the state after the last finished iteration: an interrupt (ctrl-C) mid-iteration saves it as a
        # checkpoint, so a rerun with --resume loses only that iteration and ends in the same bytes
        done, done_lines, saved = _snapshot(st), log_lines, st.iteration if resume and has_ckpt else -1
        guard = ReleaseOnGrowth(RELEASE_GROWTH_MB)
        try:
            with (self.out / LOG_FILE).open("a") as log:
                while st.iteration < cfg.iterations:
                    row = self.step(st)
                    self._maybe_validate(st, row)
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    log_lines += 1
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{row['loss']:.4f}",
                        lr=f"{row['lr']:.4g}",
                        **({"val": f"{row['val_accuracy']:.1f}"} if "val_accuracy" in row else {}),
                    )
                    if st.iteration % cfg.checkpoint_every == 0 or st.iteration == cfg.iterations:
                        self.save_checkpoint(st, log_lines)
                        saved = st.iteration
                    guard.check()
                    done, done_lines = _snapshot(st), log_lines
        except KeyboardInterrupt:
            bar.close()
            if done.iteration > saved:
                self.save_checkpoint(done, done_lines)
            raise
        bar.close()
        return self.finish(st)

    def finish(self, st: State) -> SyntheticSet:
        """Write the artifact: the best-by-validation images (or the last ones without validation)."""
        cfg, splits = self.cfg, self.data.splits
        x, lr = (st.best_x, st.best_lr) if st.best_x is not None else (st.x.detach(), float(st.lr))
        health = set_health(x, self.data.train_x, lr, cfg.lr_init)
        for problem in health.problems():
            log.warning("%s: %s", self.out, problem)
        meta = make_meta(
            dataset=cfg.dataset,
            class_names=splits.class_names,
            ipc=cfg.ipc,
            image_shape=splits.image_shape,
            mean=splits.mean,
            std=splits.std,
            method=cfg.method,
            config=cfg.to_dict(),
            seed=cfg.seed,
            iterations=st.iteration,
            wall_time_s=round(st.wall_time_s, 3),
            selection={
                "rule": _RULES[cfg.select_healthy] if st.best_x is not None else "last iteration",
                "iteration": st.best_iteration,
                "val_accuracy": st.best_val,
            },
            health=health.to_dict(),
            expert_store=self.store.path.name,
            # bytes are reproducible for the same seed, kernels and torch thread count
            compute={
                "device": self.device.type,
                "kernels": kernels(self.device),
                "torch_threads": torch.get_num_threads(),
                "allocator": current_allocator(),
            },
            arch=cfg.expert.arch,
            arch_kwargs=cfg.expert.arch_kwargs,
        )
        synthetic = SyntheticSet(x.cpu(), self.labels.cpu(), lr, meta, self.data.prep.tensors())
        synthetic.save(self.out)
        return synthetic


_RULES = {False: "best val accuracy", True: "best val accuracy among healthy iterations"}


def _same_but_longer(saved: object, now: dict[str, Any]) -> bool:
    """Whether a checkpoint's config equals `now` except, possibly, a different iteration count.

    Extending a finished run (`--resume --iterations` more) gives the bytes of a fresh longer run when
    the old end was a validation point (a multiple of eval_every): nothing else reads the count.
    """
    if not isinstance(saved, dict):
        return False
    now = json.loads(json.dumps(now))
    return {k: v for k, v in saved.items() if k != "iterations"} == {
        k: v for k, v in now.items() if k != "iterations"
    }
