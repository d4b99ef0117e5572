"""Continual protocols over a `Scenario`: the paper's retrain-from-scratch protocol and Avalanche strategies.

- retrain (DM/MTT): after each experience the memory is updated, a fresh model is trained on all memories so
  far with the one training loop (`train_model`, the set's LR, the preset's epochs and DSA) and tested on
  every class seen so far.
- naive / lwf / ewc: an Avalanche strategy trained on each experience's real data with the memory as
  `ReplayPlugin` storage (the `gdumb` memory runs Avalanche's `GDumb` instead), scored by `EvaluationPlugin`.

Both return a `ContinualResult`: accuracy matrix (% on experience j after step i), average accuracy on all
seen classes after each step, and forgetting (mean over j < T of acc[j][j] - acc[T][j], Avalanche's
StreamForgetting definition, in points).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.training import EWC, LwF, Naive
from avalanche.training.plugins import EvaluationPlugin, GDumbPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer, ExemplarsBuffer, ReservoirSamplingBuffer
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from satm_cl.baselines import FEATURE_EPOCHS
from satm_cl.continual.buffers import CondensedBuffer, HerdingBuffer
from satm_cl.continual.scenarios import Scenario
from satm_cl.errors import SatmError
from satm_cl.seeding import derive_seed, make_generator, seed_everything
from satm_cl.training import TrainConfig, accuracy, train_model

SET_MEMORIES = ("satm", "mtt", "random", "herding")  # backed by a SyntheticSet artifact
AVALANCHE_MEMORIES = ("reservoir", "class_balanced", "av_herding", "gdumb")
MEMORIES = SET_MEMORIES + AVALANCHE_MEMORIES
STRATEGIES = ("naive", "lwf", "ewc")
PROTOCOLS = ("retrain", *STRATEGIES)
# Avalanche strategy settings (real data per experience + replay); the paper's protocol uses the presets.
STRATEGY_LR = 0.01
STRATEGY_BATCH = 64
STRATEGY_EPOCHS = 10
LWF_ALPHA, LWF_TEMPERATURE = 1.0, 2.0
EWC_LAMBDA = 100.0
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


def forgetting_from_matrix(matrix: list[list[float]]) -> float:
    """Mean drop from accuracy right after learning an experience to the final one (0 for one step)."""
    last = len(matrix) - 1
    drops = [matrix[j][j] - matrix[last][j] for j in range(last)]
    return sum(drops) / len(drops) if drops else 0.0


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


def memory_tensors(memory: ExemplarsBuffer) -> tuple[torch.Tensor, torch.Tensor]:
    """The buffer's contents as (x, y) tensors, without train-time transforms."""
    if isinstance(memory, CondensedBuffer):
        return memory.tensors()
    data = memory.buffer.eval()
    xs, ys = [], []
    for x, y, *_ in DataLoader(data, batch_size=1024, shuffle=False):
        xs.append(x)
        ys.append(y)
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(xs), torch.cat(ys).long()


@dataclass
class _Agent:
    """The slice of strategy state Avalanche buffers read when updated outside a strategy."""

    device: torch.device
    eval_mb_size: int = 512
    model: nn.Module | None = None
    experience: Any = None


def _row(model: nn.Module, scenario: Scenario, step: int) -> tuple[list[float], float]:
    row = []
    for classes in scenario.step_classes[: step + 1]:
        mask = scenario.test_mask(classes)
        row.append(_acc(model, scenario.test_x[mask], scenario.test_y[mask]))
    seen = [c for classes in scenario.step_classes[: step + 1] for c in classes]
    mask = scenario.test_mask(seen)
    return row, _acc(model, scenario.test_x[mask], scenario.test_y[mask])


def _acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    device = next(model.parameters()).device
    return accuracy(model, x.to(device), y.to(device))


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
    steps = tqdm(enumerate(scenario.train_stream), total=scenario.steps, desc=progress, leave=False,
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
) -> ContinualResult:
    """Avalanche `strategy` (naive, lwf, ewc) with `memory` as replay storage; `memory=None` runs GDumb."""
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
        learner = _make_strategy(strategy, memory, mem_size, model, common)
        matrix: list[list[float]] = []
        averages: list[float] = []
        result: dict[str, Any] = {}
        steps = tqdm(enumerate(scenario.train_stream), total=scenario.steps, desc=progress, leave=False,
                     disable=progress is None)
        for i, exp in steps:
            learner.train(exp)
            result = learner.eval(scenario.test_stream[: i + 1])
            matrix.append([100.0 * result[f"{ACC_EXP}{j:03d}"] for j in range(i + 1)])
            averages.append(100.0 * result[ACC_STREAM])
    forgetting = 100.0 * float(result.get(FORGETTING, 0.0))
    return ContinualResult(matrix, averages, forgetting, mem_size)


def _make_strategy(
    strategy: str, memory: ExemplarsBuffer | None, mem_size: int, model: nn.Module, common: dict[str, Any]
) -> Any:
    if memory is None:  # GDumb = Naive + GDumbPlugin (what avalanche.training.GDumb builds)
        return Naive(plugins=[_GDumbPlugin(mem_size)], **common)
    if memory.max_size != mem_size:
        raise SatmError(f"memory holds {memory.max_size} slots, expected {mem_size}")
    if isinstance(memory, HerdingBuffer):
        memory.features.model = model
    plugins = [_ReplayPlugin(mem_size=memory.max_size, storage_policy=memory)]
    if strategy == "naive":
        return Naive(plugins=plugins, **common)
    if strategy == "lwf":
        return LwF(alpha=LWF_ALPHA, temperature=LWF_TEMPERATURE, plugins=plugins, **common)
    return EWC(ewc_lambda=EWC_LAMBDA, mode="separate", plugins=plugins, **common)


class _ReplayPlugin(ReplayPlugin):
    """`ReplayPlugin` updating its storage through `post_adapt` (`update` is deprecated, noisy)."""

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.post_adapt(strategy, strategy.experience)


class _GDumbPlugin(GDumbPlugin):
    """`GDumbPlugin` updating its storage through `post_adapt` (same behaviour, no deprecation warning)."""

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.post_adapt(strategy, strategy.experience)
        strategy.adapted_dataset = self.storage_policy.buffer
