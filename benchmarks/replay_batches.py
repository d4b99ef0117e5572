"""Naive + ReplayPlugin on digits (5 class-incremental steps, the continual suite's settings): how many memory
images a mini-batch carries, and what that does to final accuracy.

Avalanche's ReplayDataLoader draws min(memory size, batch_size_mem) replay images per step and walks the
memory pass by pass, so a memory that is not a multiple of the replay batch (64 here) ends each pass with a
partial batch, and a memory smaller than it replays fewer images per step. A per-class memory at IPC k
(condensed, herding, random) holds k x the classes seen so far; reservoir fills every slot from the start.

  python benchmarks/replay_batches.py            replay images per step, per memory and experience (seconds)
  python benchmarks/replay_batches.py --train    also Naive + reservoir final accuracy at 64..256 slots,
                                                 5 class orders (about 20 min on one thread)
  python benchmarks/replay_batches.py --replay-batch 20   the table with `--replay-batch 20`'s replay batch
  python benchmarks/replay_batches.py --ipc 32 --replay-batch 64   ... at one IPC (default 10, 20, 50)
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
from avalanche.benchmarks.utils.data_loader import ReplayDataLoader
from avalanche.training.storage_policy import ExemplarsBuffer, ReservoirSamplingBuffer

from satm_cl.baselines import create_baseline
from satm_cl.continual import protocols
from satm_cl.continual.buffers import SubsetBuffer
from satm_cl.continual.presets import condense_config
from satm_cl.continual.scenarios import make_scenario
from satm_cl.data import DatasetSplits, Preprocessor, create_dataset
from satm_cl.models import create_model

BATCH = protocols.STRATEGY_BATCH  # Naive's data mini-batch, and ReplayPlugin's replay batch by default
# results/continual/digits-memory-size's condensation settings (they fix the arch and the val split)
OVERRIDES = {"iterations": 60, "eval_every": 0, "expert": {"num_experts": 4}}
TRAIN_SLOTS = (64, 100, 128, 160, 192, 200, 256)
ORDERS = 5
EPOCHS = 5


def replay_per_step(
    memory: ExemplarsBuffer, exp: Any, classes: list[int], replay_batch: int = BATCH
) -> tuple[int, float, int, int]:
    """(memory size, mean, min and max replay images per training step) of one experience's
    ReplayDataLoader."""
    loader = ReplayDataLoader(exp.dataset, memory.buffer, oversample_small_tasks=True, batch_size=BATCH,
                              batch_size_mem=replay_batch, shuffle=True)
    current = torch.tensor(classes)
    counts = [int((~torch.isin(batch[1], current)).sum()) for batch in loader]
    return len(memory.buffer), sum(counts) / len(counts), min(counts), max(counts)


def replay_table(ipcs: tuple[int, ...] = (10, 20, 50), replay_batch: int = BATCH) -> None:
    splits = create_dataset("digits")
    print(f"replay batch (batch_size_mem): {replay_batch}\n")
    print("| memory | IPC | slots | experience | memory images | replay images per step (min–max) |")
    print("|---|---|---|---|---|---|")
    for ipc in ipcs:
        subset = create_baseline("random", "digits", ipc, seed=0)
        scenario = make_scenario(splits, 5, 0, subset.preprocessor())
        slots = ipc * splits.num_classes
        for name, memory in (("reservoir", ReservoirSamplingBuffer(slots)),
                             ("per-class (random)", SubsetBuffer(subset, slots))):
            agent = SimpleNamespace(device=torch.device("cpu"), model=None, experience=None)
            for i, exp in enumerate(scenario.train_stream):
                if i > 0:  # the first experience trains without replay
                    classes = scenario.step_classes[i]
                    size, mean, low, high = replay_per_step(memory, exp, classes, replay_batch)
                    print(f"| {name} | {ipc} | {slots} | {i + 1} | {size} | {mean:.1f} ({low}–{high}) |",
                          flush=True)
                agent.experience = exp
                memory.post_adapt(agent, exp)


def runner_setup() -> tuple[DatasetSplits, Preprocessor, Callable[[int], torch.nn.Module]]:
    """Digits as the continual runner prepares it for these studies: split, input space, model factory."""
    cfg = condense_config("digits", 10, "satm", OVERRIDES)
    splits = create_dataset("digits", val_fraction=cfg.expert.val_fraction)
    prep = Preprocessor.fit(splits.train.x, splits.mean, splits.std, zca=cfg.expert.zca)
    c, h, w = splits.image_shape

    def make_model(seed: int) -> torch.nn.Module:
        return create_model(cfg.expert.arch, c, splits.num_classes, (h, w), seed=seed % 2**31,
                            **cfg.expert.arch_kwargs)

    return splits, prep, make_model


def reservoir_sweep() -> None:
    """Final average accuracy of Naive + reservoir per slot count: the continual runner's model, split,
    class orders (seeds 0..4) and strategy settings, only the reservoir's size varied."""
    splits, prep, make_model = runner_setup()
    print("\n| reservoir slots | slots mod 64 | final accuracy per order | mean |")
    print("|---|---|---|---|")
    for slots in TRAIN_SLOTS:
        finals = []
        for order in range(ORDERS):
            scenario = make_scenario(splits, 5, order, prep)
            memory = ReservoirSamplingBuffer(slots)
            result = protocols.strategy_protocol(scenario, memory, "naive", make_model, order, slots, "cpu",
                                                 epochs=EPOCHS)
            finals.append(result.avg_accuracy[-1])
        per_order = " / ".join(f"{a:.1f}" for a in finals)
        print(f"| {slots} | {slots % BATCH} | {per_order} | {sum(finals) / len(finals):.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="also the reservoir sweep (about 20 min)")
    parser.add_argument("--replay-batch", type=int, default=BATCH, help="batch_size_mem of the table")
    parser.add_argument("--ipc", type=int, action="append",
                        help="IPC of the table (repeatable; default 10 20 50)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    replay_table(tuple(args.ipc or (10, 20, 50)), replay_batch=args.replay_batch)
    if args.train:
        reservoir_sweep()


if __name__ == "__main__":
    main()
