"""Avalanche's own ER_ACE (its own class-balanced buffer, nothing of ours substituted) and Naive + its own
ReplayPlugin on digits, 5 class-incremental steps, 100 slots, at 1, 3 and 5 epochs per experience: the final
accuracy on each experience. Shows that ER-ACE's 0 % on the newest experience at short training is ER-ACE's,
not our memory substitution's (docs/continual.md). One thread, about a minute.
Usage: python benchmarks/er_ace_short_training.py"""

from __future__ import annotations

import warnings

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import ER_ACE, Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from torch import nn

from satm_cl.continual.scenarios import make_scenario
from satm_cl.data import Preprocessor, create_dataset
from satm_cl.models import create_model

EXP = "Top1_Acc_Exp/eval_phase/test_stream/Exp"


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    splits = create_dataset("digits")
    prep = Preprocessor.fit(splits.train.x, splits.mean, splits.std, zca=False)
    scenario = make_scenario(splits, 5, 0, prep)
    c, h, w = splits.image_shape
    print("| strategy | epochs | " + " | ".join(f"exp {j + 1}" for j in range(5)) + " |")
    print("|---|---|" + "---|" * 5)
    for name in ("er_ace", "naive"):
        for epochs in (1, 3, 5):
            torch.manual_seed(0)
            model = create_model("convnet", c, 10, (h, w), seed=0)
            common = {
                "model": model, "criterion": nn.CrossEntropyLoss(), "train_mb_size": 64,
                "train_epochs": epochs,
                "optimizer": torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4),
                "eval_mb_size": 512,
                "evaluator": EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
            }
            if name == "er_ace":
                learner = ER_ACE(mem_size=100, batch_size_mem=20, **common)
            else:
                learner = Naive(plugins=[ReplayPlugin(mem_size=100)], **common)
            for exp in scenario.train_stream:
                learner.train(exp)
            result = learner.eval(scenario.test_stream)
            accs = [100 * result[f"{EXP}{j:03d}"] for j in range(5)]
            print(f"| {name} | {epochs} | " + " | ".join(f"{a:.1f}" for a in accs) + " |", flush=True)


if __name__ == "__main__":
    main()
