"""Avalanche keeps the optimizer's state (SGD momentum 0.9 here) from one experience to the next unless a
strategy is told to reset it. With few SGD steps per experience (digits: 4 per epoch) the previous
experience's momentum can outweigh the new one's gradients. This runs Naive + replay and ER-ACE with a
100-slot reservoir, digits, 5 steps, 3 class orders, at 1 and 5 epochs per experience, with the state kept
(Avalanche's default, the continual suite's) and reset at each experience (`reset_optimizer=True`).
About 10 minutes on one thread.  Usage: python benchmarks/optimizer_state.py"""

from __future__ import annotations

import warnings

import torch
from avalanche.training.storage_policy import ReservoirSamplingBuffer
from replay_batches import runner_setup  # same directory: run this file as a script

from satm_cl.continual import protocols
from satm_cl.continual.scenarios import make_scenario

SLOTS, ORDERS = 100, 3


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    splits, prep, make_model = runner_setup()
    print("| strategy | epochs | optimizer state | final accuracy per order | mean "
          "| newest experience (order 0) |")
    print("|---|---|---|---|---|---|")
    for strategy in ("naive", "er_ace"):
        for epochs in (1, 5):
            for reset in (False, True):
                finals, newest = [], 0.0
                for order in range(ORDERS):
                    scenario = make_scenario(splits, 5, order, prep)
                    result = protocols.strategy_protocol(
                        scenario, ReservoirSamplingBuffer(SLOTS), strategy, make_model, order, SLOTS, "cpu",
                        epochs=epochs, reset_optimizer=reset)
                    finals.append(result.avg_accuracy[-1])
                    newest = result.matrix[-1][-1] if order == 0 else newest
                per_order = " / ".join(f"{a:.1f}" for a in finals)
                state = "reset each experience" if reset else "kept (default)"
                print(f"| {strategy} | {epochs} | {state} | {per_order} | {sum(finals) / len(finals):.1f} "
                      f"| {newest:.1f} |", flush=True)


if __name__ == "__main__":
    main()
