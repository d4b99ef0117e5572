"""Naive + replay on digits: does the model swing between old and new classes from epoch to epoch?

Post-hoc diagnostic, labelled so: chosen after the report check flagged experience 2 below chance for every
memory in results/continual/digits-memory-size and digits-naive-full-replay. Avalanche's Naive with its own
ReplayPlugin (reservoir storage: the flag was memory-independent), 5 class-incremental steps, the class orders
of seeds 0-4, the studies' ConvNet. After every epoch the model scores the current experience's train images
(its new classes); no test or val image is read. Two settings of the committed studies: `default` (200 slots,
Avalanche's replay batch, momentum carried: digits-memory-size at IPC 20) and `full-replay` (320 slots, 64
replayed per batch, momentum reset: digits-naive-full-replay), each at the studies' LR 0.01 and at 0.003 and
0.001. One row per (setting, LR), over steps 2-5 of every order: how often a step ends with its new classes
below chance, or more than 20 points below their best epoch; the mean of (best epoch − last epoch) and of the
largest drop between two consecutive epochs; the end-of-run accuracy on all train images. One thread, about
10 minutes.
Usage: python benchmarks/naive_epoch_swing.py [--orders 5] [--lrs 0.01,0.003,0.001] [--epochs 5]"""

from __future__ import annotations

import argparse
import itertools
import statistics
import warnings
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from torch import nn

from satm_cl.continual.presets import condense_config
from satm_cl.continual.scenarios import Scenario, make_scenario
from satm_cl.data import Preprocessor, create_dataset
from satm_cl.models import create_model

SETTINGS = {  # name -> (memory slots, replay batch or None for Avalanche's default, reset momentum)
    "default": (200, None, False),
    "full-replay": (320, 64, True),
}


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 1024]).argmax(1) for i in range(0, len(x), 1024)])
    return 100.0 * (pred == y).float().mean().item()


class EpochProbe(SupervisedPlugin):  # type: ignore[misc]
    """After each epoch: accuracy on the current experience's train images and on the earlier ones'."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__()
        self.scenario = scenario
        self.new: dict[int, list[float]] = {}  # step index -> new-class accuracy per epoch

    def _images(self, steps: range) -> tuple[torch.Tensor, torch.Tensor]:
        classes = torch.tensor([c for k in steps for c in self.scenario.step_classes[k]])
        keep = torch.isin(self.scenario.train_y, classes)
        return self.scenario.train_x[keep], self.scenario.train_y[keep]

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        k = strategy.experience.current_experience
        strategy.model.eval()
        self.new.setdefault(k, []).append(_accuracy(strategy.model, *self._images(range(k, k + 1))))
        strategy.model.train()


def run(scenario: Scenario, setting: str, lr: float, epochs: int, seed: int) -> tuple[EpochProbe, float]:
    """One Naive run over the 5 steps; returns its probe and its end-of-run accuracy on all train images."""
    slots, replay, reset = SETTINGS[setting]
    torch.manual_seed(seed)
    c, h, w = scenario.train_x.shape[1:]
    expert = condense_config("digits", slots // scenario.num_classes).expert  # the network the studies train
    model = create_model(expert.arch, c, scenario.num_classes, (h, w), seed=seed, **expert.arch_kwargs)
    probe = EpochProbe(scenario)
    learner = Naive(
        model=model, criterion=nn.CrossEntropyLoss(), train_mb_size=64, train_epochs=epochs, eval_mb_size=512,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4),
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
        plugins=[ReplayPlugin(mem_size=slots, batch_size_mem=replay), probe],
    )
    for exp in scenario.train_stream:
        learner.train(exp, reset_optimizer_state=reset)
    model.eval()
    return probe, _accuracy(model, scenario.train_x, scenario.train_y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5, help="class orders (seeds 0 .. N-1)")
    parser.add_argument("--lrs", default="0.01,0.003,0.001", help="comma-separated SGD learning rates")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per experience")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    splits = create_dataset("digits")
    prep = Preprocessor.fit(splits.train.x, splits.mean, splits.std, zca=False)
    scenarios = [make_scenario(splits, 5, s, prep) for s in range(args.orders)]
    print(f"Naive + ReplayPlugin on digits, 5 steps, {args.epochs} epochs, class orders 0-{args.orders - 1}; "
          "train images only\n")
    print("| setting | LR | steps ending below chance on their new classes | steps ending > 20 points "
          "below their best epoch | new classes: best epoch − last (mean, points) | largest drop between two "
          "epochs (mean, points) | end-of-run accuracy, all train images (mean %) |")
    print("|---|---|---|---|---|---|---|")
    for setting in SETTINGS:
        for lr in (float(x) for x in args.lrs.split(",")):
            below, fell, gaps, drops, finals = 0, 0, [], [], []
            for order, scenario in enumerate(scenarios):
                probe, final = run(scenario, setting, lr, args.epochs, seed=order)
                finals.append(final)
                for k in range(1, 5):  # steps 2-5: the first has no old classes to swing against
                    acc = probe.new[k]
                    below += acc[-1] < 100.0 / (2 * (k + 1))
                    gaps.append(max(acc) - acc[-1])
                    fell += gaps[-1] > 20
                    drops.append(max([0.0] + [a - b for a, b in itertools.pairwise(acc)]))
            n = 4 * len(scenarios)
            print(f"| {setting} | {lr:g} | {below} of {n} | {fell} of {n} | {statistics.mean(gaps):.1f} | "
                  f"{statistics.mean(drops):.1f} | {statistics.mean(finals):.1f} |", flush=True)


if __name__ == "__main__":
    main()
