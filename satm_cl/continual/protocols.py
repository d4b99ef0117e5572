"""Continual protocols over a `Scenario`: the paper's retrain-from-scratch protocol and Avalanche strategies.

- retrain (DM/MTT): after each experience the memory is updated, a fresh model is trained on all memories so
  far with the one training loop (`train_model`, the set's LR, the preset's epochs and DSA) and tested on
  every class seen so far.
- naive / lwf / ewc: an Avalanche strategy trained on each experience's real data with the memory as
  `ReplayPlugin` storage (the `gdumb` memory runs Avalanche's `GDumb` instead), scored by `EvaluationPlugin`.
- er_ace / der: Avalanche's replay strategies that keep their own buffer (ER-ACE, DER), with the memory
  substituted for that buffer (`strategy.storage_policy`); DER's stored logits are computed when a sample
  enters the memory (`LogitsBuffer`). Strategies are looked up in the `STRATEGY_BUILDERS` registry.

Both return a `ContinualResult`: accuracy matrix (% on experience j after step i), average accuracy on all
seen classes after each step, forgetting (mean over j < T of acc[j][j] - acc[T][j], Avalanche's
StreamForgetting definition, in points), average incremental accuracy (mean of the per-step averages) and
backward transfer (mean over j < T of acc[T][j] - acc[j][j]).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.training import DER, ER_ACE, EWC, LwF, Naive
from avalanche.training.plugins import EvaluationPlugin, GDumbPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer, ExemplarsBuffer, ReservoirSamplingBuffer
from torch import nn

from satm_cl.baselines import FEATURE_EPOCHS
from satm_cl.continual.buffers import HerdingBuffer, LogitsBuffer, memory_tensors
from satm_cl.continual.scenarios import Scenario
from satm_cl.errors import SatmError
from satm_cl.progress import progress_bar
from satm_cl.registry import Registry
from satm_cl.seeding import derive_seed, make_generator, seed_everything
from satm_cl.training import TrainConfig, count_correct, percent, train_model

SET_MEMORIES = ("satm", "mtt", "random", "herding")  # backed by a SyntheticSet artifact
AVALANCHE_MEMORIES = ("reservoir", "class_balanced", "av_herding", "gdumb")
MEMORIES = SET_MEMORIES + AVALANCHE_MEMORIES
STRATEGIES = ("naive", "lwf", "ewc", "er_ace", "der")
PROTOCOLS = ("retrain", *STRATEGIES)
OWN_BUFFER_STRATEGIES = ("er_ace", "der")  # fixed replay batches (drop_last); runner.OWN_BUFFER_PROTOCOLS
# Avalanche strategy settings (real data per experience + replay); the paper's protocol uses the presets.
STRATEGY_LR = 0.01
STRATEGY_BATCH = 64
STRATEGY_EPOCHS = 10
LWF_ALPHA, LWF_TEMPERATURE = 1.0, 2.0
EWC_LAMBDA = 100.0
DER_ALPHA, DER_BETA = 0.1, 0.5  # Avalanche's defaults
REPLAY_BATCH = 32  # ER-ACE / DER replay mini-batch, capped at one experience's share of the memory
# EvaluationPlugin result keys (task-free names: one task label)
ACC_EXP = "Top1_Acc_Exp/eval_phase/test_stream/Exp"
ACC_STREAM = "Top1_Acc_Stream/eval_phase/test_stream"
FORGETTING = "StreamForgetting/eval_phase/test_stream"

ModelFactory = Callable[[int], nn.Module]  # seed -> fresh model with a head over all classes


@dataclass(frozen=True)
class ContinualResult:
    """Accuracy matrix `matrix[i][j]` (% on experience j after step i, j <= i), averages and forgetting."""

    matrix: list[list[float]]
    avg_accuracy: list[float]
    forgetting: float
    mem_size: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def avg_incremental_accuracy(self) -> float:
        """Mean over steps of the average accuracy on all classes seen so far (Rebuffi et al. 2017)."""
        return average_incremental_accuracy(self.avg_accuracy)

    @property
    def bwt(self) -> float:
        """Backward transfer (Lopez-Paz & Ranzato 2017) from the accuracy matrix, in points."""
        return backward_transfer(self.matrix)


def forgetting_from_matrix(matrix: list[list[float]]) -> float:
    """Mean drop from accuracy right after learning an experience to the final one (0 for one step)."""
    last = len(matrix) - 1
    drops = [matrix[j][j] - matrix[last][j] for j in range(last)]
    return sum(drops) / len(drops) if drops else 0.0


def average_incremental_accuracy(averages: list[float]) -> float:
    """Mean of the per-step average accuracies A_1..A_T (0 for no steps)."""
    return sum(averages) / len(averages) if averages else 0.0


def backward_transfer(matrix: list[list[float]]) -> float:
    """BWT = mean over j < T of acc[T][j] - acc[j][j]: negative when learning later experiences hurts earlier
    ones (with this matrix it equals minus `forgetting_from_matrix`); 0 for one step."""
    last = len(matrix) - 1
    gains = [matrix[last][j] - matrix[j][j] for j in range(last)]
    return sum(gains) / len(gains) if gains else 0.0


def check_names(memory: str, protocol: str) -> None:
    """A one-line SatmError for an unknown memory or protocol name."""
    if memory not in MEMORIES:
        raise SatmError(f"unknown memory {memory!r}; valid: {', '.join(MEMORIES)}")
    if protocol not in PROTOCOLS:
        raise SatmError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")


def avalanche_buffer(name: str, mem_size: int) -> ExemplarsBuffer:
    """Avalanche's own memories at `mem_size` slots (`gdumb`: the storage policy of `GDumbPlugin`)."""
    if name == "reservoir":
        return ReservoirSamplingBuffer(mem_size)
    if name == "class_balanced":
        return ClassBalancedBuffer(mem_size, adaptive_size=True)
    if name == "av_herding":
        return HerdingBuffer(mem_size)
    if name == "gdumb":
        return GDumbPlugin(mem_size).storage_policy
    raise SatmError(f"unknown Avalanche memory {name!r}; valid: {', '.join(AVALANCHE_MEMORIES)}")


@dataclass
class _Agent:
    """The slice of strategy state Avalanche buffers read when updated outside a strategy."""

    device: torch.device
    eval_mb_size: int = 512
    model: nn.Module | None = None
    experience: Any = None


def _row(model: nn.Module, scenario: Scenario, step: int) -> tuple[list[float], float]:
    """Accuracy on each seen experience's test classes, and on all of them together.

    One pass over the seen test images: the overall figure comes from the per-experience hit counts, so no
    image is scored twice (the same number as scoring the union, since a model scores each image alone).
    """
    device = next(model.parameters()).device
    hits, sizes = [], []
    for classes in scenario.step_classes[: step + 1]:
        mask = scenario.test_mask(classes)
        x, y = scenario.test_x[mask].to(device), scenario.test_y[mask].to(device)
        hits.append(count_correct(model, x, y))
        sizes.append(int(mask.sum()))
    return [percent(h, n) for h, n in zip(hits, sizes, strict=True)], percent(sum(hits), sum(sizes))


def retrain_protocol(
    scenario: Scenario,
    memory: ExemplarsBuffer,
    make_model: ModelFactory,
    train_cfg: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
    feature_cfg: TrainConfig | None = None,
    progress: str | None = None,
) -> ContinualResult:
    """The paper's protocol: per step, update `memory`, train a fresh model on it, test on all seen classes.

    A `HerdingBuffer` selects with features of a model trained on the experience's real data (`feature_cfg`).
    """
    device = torch.device(device)
    seed_everything(derive_seed(seed, "retrain-avalanche-rng"))
    agent = _Agent(device)
    matrix: list[list[float]] = []
    averages: list[float] = []
    steps = progress_bar(enumerate(scenario.train_stream), total=scenario.steps, desc=progress, leave=False,
                 disable=progress is None)
    for i, exp in steps:
        agent.experience = exp
        if isinstance(memory, HerdingBuffer):
            fcfg = feature_cfg or feature_config()
            memory.features.model = _feature_model(scenario, i, make_model, fcfg, seed, device)
        memory.post_adapt(agent, exp)
        x, y = memory_tensors(memory)
        model = make_model(derive_seed(seed, "retrain-model", i)).to(device)
        train_model(model, x.to(device), y.to(device), train_cfg, make_generator(seed, "retrain-train", i))
        row, avg = _row(model, scenario, i)
        matrix.append(row)
        averages.append(avg)
    return ContinualResult(matrix, averages, forgetting_from_matrix(matrix), memory.max_size)


def _feature_model(
    scenario: Scenario, step: int, make_model: ModelFactory, cfg: TrainConfig, seed: int, device: torch.device
) -> nn.Module:
    keep = torch.isin(scenario.train_y, torch.tensor(scenario.step_classes[step]))
    model = make_model(derive_seed(seed, "herding-features", step)).to(device)
    x, y = scenario.train_x[keep].to(device), scenario.train_y[keep].to(device)
    return train_model(model, x, y, cfg, make_generator(seed, "herding-features", step))


def feature_config(epochs: int = FEATURE_EPOCHS, lr: float = 0.01, dsa: str = "none") -> TrainConfig:
    """Training of the short-lived feature net behind `av_herding` in the retrain protocol."""
    return TrainConfig(epochs=epochs, lr=lr, batch_size=64, decay_at=None, dsa=dsa)


def strategy_protocol(
    scenario: Scenario,
    memory: ExemplarsBuffer | None,
    strategy: str,
    make_model: ModelFactory,
    seed: int,
    mem_size: int,
    device: torch.device | str = "cpu",
    epochs: int = STRATEGY_EPOCHS,
    lr: float = STRATEGY_LR,
    batch_size: int = STRATEGY_BATCH,
    progress: str | None = None,
    reset_optimizer: bool = False,
    replay_batch: int | None = None,
) -> ContinualResult:
    """Avalanche `strategy` (see `STRATEGY_BUILDERS`) with `memory` as its replay storage; `memory=None`
    runs GDumb. Avalanche keeps the optimizer's state (SGD momentum) from one experience to the next;
    `reset_optimizer` clears it at each experience (`benchmarks/optimizer_state.py` measures what it does).
    `replay_batch` fixes the replayed images per mini-batch; by default `ReplayPlugin` replays min(memory,
    `batch_size`) with a partial batch closing each pass over the memory, and ER-ACE / DER replay
    min(`REPLAY_BATCH`, `mem_size` / steps). A size dividing every memory size replays the same number of
    images at every step for every memory (`benchmarks/replay_batches.py`)."""
    if replay_batch is not None and replay_batch < 1:
        raise SatmError(f"replay_batch must be >= 1, got {replay_batch}")
    if strategy not in STRATEGIES:
        raise SatmError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    device = torch.device(device)
    seed_everything(derive_seed(seed, "strategy", strategy))
    model = make_model(derive_seed(seed, "strategy-model")).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no loggers": metrics are read from eval()'s return value
        evaluator = EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True),
            forgetting_metrics(experience=True, stream=True),
            loggers=[],
        )
        common: dict[str, Any] = {
            "model": model,
            "optimizer": torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4),
            "criterion": nn.CrossEntropyLoss(), "train_mb_size": batch_size, "train_epochs": epochs,
            "eval_mb_size": 512, "device": device, "evaluator": evaluator,
        }
        if replay_batch is None and strategy in OWN_BUFFER_STRATEGIES:
            replay_batch = max(1, min(REPLAY_BATCH, mem_size // scenario.steps))
        learner = _make_strategy(strategy, memory, mem_size, model, common, replay_batch)
        matrix: list[list[float]] = []
        averages: list[float] = []
        result: dict[str, Any] = {}
        steps = progress_bar(enumerate(scenario.train_stream), total=scenario.steps, desc=progress,
                             leave=False, disable=progress is None)
        for i, exp in steps:
            learner.train(exp, reset_optimizer_state=reset_optimizer)
            result = learner.eval(scenario.test_stream[: i + 1])
            matrix.append([100.0 * result[f"{ACC_EXP}{j:03d}"] for j in range(i + 1)])
            averages.append(100.0 * result[ACC_STREAM])
    forgetting = 100.0 * float(result.get(FORGETTING, 0.0))
    return ContinualResult(matrix, averages, forgetting, mem_size)


# name -> builder(memory, model, common strategy kwargs, replay mini-batch) -> an Avalanche strategy; the
# replay mini-batch is None only for ReplayPlugin strategies left at Avalanche's default
StrategyBuilder = Callable[[ExemplarsBuffer, nn.Module, dict[str, Any], "int | None"], Any]
STRATEGY_BUILDERS: Registry[StrategyBuilder] = Registry("strategy")


def _replay(memory: ExemplarsBuffer, replay_batch: int | None) -> list[Any]:
    return [_ReplayPlugin(mem_size=memory.max_size, storage_policy=memory, batch_size_mem=replay_batch)]


@STRATEGY_BUILDERS.register("naive")
def _naive(
    memory: ExemplarsBuffer, model: nn.Module, common: dict[str, Any], replay_batch: int | None
) -> Any:
    return Naive(plugins=_replay(memory, replay_batch), **common)


@STRATEGY_BUILDERS.register("lwf")
def _lwf(
    memory: ExemplarsBuffer, model: nn.Module, common: dict[str, Any], replay_batch: int | None
) -> Any:
    return LwF(alpha=LWF_ALPHA, temperature=LWF_TEMPERATURE, plugins=_replay(memory, replay_batch), **common)


@STRATEGY_BUILDERS.register("ewc")
def _ewc(
    memory: ExemplarsBuffer, model: nn.Module, common: dict[str, Any], replay_batch: int | None
) -> Any:
    return EWC(ewc_lambda=EWC_LAMBDA, mode="separate", plugins=_replay(memory, replay_batch), **common)


@STRATEGY_BUILDERS.register("er_ace")
def _er_ace(
    memory: ExemplarsBuffer, model: nn.Module, common: dict[str, Any], replay_batch: int | None
) -> Any:
    """ER-ACE: its class-balanced buffer is replaced by `memory` (updated before each experience's training,
    so the current experience's memory is replayed too, as ER-ACE does with its own buffer)."""
    learner = ER_ACE(mem_size=memory.max_size, batch_size_mem=replay_batch, **common)
    learner.storage_policy = _Storage(memory)
    return learner


@STRATEGY_BUILDERS.register("der")
def _der(
    memory: ExemplarsBuffer, model: nn.Module, common: dict[str, Any], replay_batch: int | None
) -> Any:
    """DER: its logit-storing buffer is replaced by `memory` wrapped in a `LogitsBuffer` (logits of the model
    when a sample enters, after training on its experience, as Avalanche's DER stores them)."""
    learner = DER(mem_size=memory.max_size, batch_size_mem=replay_batch, alpha=DER_ALPHA, beta=DER_BETA,
                  **common)
    learner.storage_policy = _Storage(LogitsBuffer(memory))
    return learner


def _make_strategy(
    strategy: str, memory: ExemplarsBuffer | None, mem_size: int, model: nn.Module, common: dict[str, Any],
    replay_batch: int | None,
) -> Any:
    if memory is None:  # GDumb = Naive + GDumbPlugin (what avalanche.training.GDumb builds)
        return Naive(plugins=[_GDumbPlugin(mem_size)], **common)
    if memory.max_size != mem_size:
        raise SatmError(f"memory holds {memory.max_size} slots, expected {mem_size}")
    if isinstance(memory, HerdingBuffer):
        memory.features.model = model
    return STRATEGY_BUILDERS.get(strategy)(memory, model, common, replay_batch)


class _Storage(ExemplarsBuffer):
    """A memory as a strategy's own `storage_policy`: the strategy's `update(strategy)` calls become
    `post_adapt` (Avalanche's `update` is deprecated and warns on every call)."""

    def __init__(self, inner: ExemplarsBuffer) -> None:
        super().__init__(inner.max_size)
        self.inner = inner

    @property  # type: ignore[override]
    def buffer(self) -> Any:
        return self.inner.buffer

    def update(self, strategy: Any, **kwargs: Any) -> None:
        self.inner.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent_state: Any, exp: Any) -> None:
        self.inner.post_adapt(agent_state, exp)

    def resize(self, strategy: Any, new_size: int) -> None:
        self.inner.resize(strategy, new_size)
        self.max_size = new_size


class _ReplayPlugin(ReplayPlugin):
    """`ReplayPlugin` updating its storage through `post_adapt` (`update` is deprecated, noisy)."""

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.post_adapt(strategy, strategy.experience)


class _GDumbPlugin(GDumbPlugin):
    """`GDumbPlugin` updating its storage through `post_adapt` (same behaviour, no deprecation warning)."""

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.post_adapt(strategy, strategy.experience)
        strategy.adapted_dataset = self.storage_policy.buffer
