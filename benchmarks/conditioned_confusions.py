"""Memory-conditioned Fashion-MNIST sets (results/continual/fashion-mnist-stream-mem): val accuracy of fresh
models trained on (set + its memory) with the starting real images (iteration 0) and the condensed ones (the
run's iteration-300 checkpoint), and where the new classes' misclassified val images go. Val split only.
The iteration-300 images live in the run's working tree (RUN below), not in the repository.
Usage: python benchmarks/conditioned_confusions.py [RUN_MEMORY_DIR] [ORDER:STEP ...]
(ORDER:STEP: only those rows are trained, e.g. 2:4 for a set that has just finished)"""

import collections
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from satm_cl.data import create_dataset
from satm_cl.experts.train import fit_preprocessor, restrict_classes
from satm_cl.models import create_model
from satm_cl.replay_memory import MemoryImages
from satm_cl.seeding import derive_seed
from satm_cl.synthetic import load_synthetic
from satm_cl.training import TrainConfig, train_runs

torch.set_num_threads(1)
S = Path("results/continual/fashion-mnist-stream/memories/stream")
M = Path("results/continual/fashion-mnist-stream-mem/memories/stream")
ARGS = [a for a in sys.argv[1:] if ":" not in a]
ONLY = {tuple(int(v) for v in a.split(":")) for a in sys.argv[1:] if ":" in a}
FM = Path(ARGS[0] if ARGS else "/work/fm-mem/results/continual/fashion-mnist-stream-mem/memories/stream")
pre = "fashion-mnist-ipc10-satm-classes"
# each class order's experiences (the run's orders of seeds 0, 1, 2); a conditioned set's directory is found
# from the fingerprint of the memory rebuilt from the sets before it, so a new set needs no entry here
ORDERS = {
    0: [(2, 3), (5, 8), (4, 9), (6, 7), (0, 1)],
    1: [(1, 9), (3, 8), (0, 2), (4, 5), (6, 7)],
    2: [(0, 3), (1, 2), (6, 7), (4, 8), (5, 9)],
}
NAMES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
splits = create_dataset("fashion-mnist", data_dir="/usr/share/datasets/fashion-mnist")
prep = fit_preprocessor(splits, zca=False)
c, h, w = splits.image_shape


def fit(x, y, lr, cfg):
    seeds = [derive_seed(0, "diag", r) for r in range(3)]
    models = [create_model("convnet", c, 10, (h, w), seed=s, **cfg["expert"]["arch_kwargs"]) for s in seeds]
    tc = TrainConfig(epochs=cfg["eval_epochs"], lr=lr, batch_size=256, dsa=cfg["dsa"])
    return train_runs(models, x, y, tc, seeds, stacked=False).models


print(
    "| order | step | set vs memory | images | val acc (3 runs) | errors into the memory's classes "
    "| top confusions |"
)
print("|---|---|---|---|---|---|---|")
for order, steps in ORDERS.items():
    per_class = {}
    for k, classes in enumerate(steps):
        memory = None
        if k > 0:
            memory = MemoryImages(
                torch.cat(list(per_class.values())),
                torch.cat([torch.full((len(v),), cl) for cl, v in per_class.items()]),
            )
        name = f"{pre}{classes[0]}-{classes[1]}"
        d = S / name if memory is None else M / f"{name}-mem{memory.fingerprint()}"
        if not (d / "synthetic.json").exists():
            print(f"order {order}: step {k + 1} ({d.name}) not committed yet", file=sys.stderr)
            break  # nor are this order's later sets
        if memory is not None and (not ONLY or (order, k + 1) in ONLY):
            target = FM / d.name
            ck = json.loads((target / "checkpoint.json").read_text())
            cfg = ck["config"]
            tens = load_file(str(target / ck["tensors"]))
            assert ck["iteration"] == 300
            init = load_synthetic(d) if ck["best_iteration"] == 0 else None
            val = restrict_classes(splits, list(classes)).val
            vx, vy = prep.transform(val.x), val.y
            labels = torch.tensor(list(classes)).repeat_interleave(10)
            variants = [("condensed (300)", tens["x"], float(tens["lr"]))]
            if init is not None:
                variants.insert(0, ("starting real (0)", init.images, init.lr))
            for tag, x, lr in variants:
                models = fit(torch.cat([x, memory.x]), torch.cat([labels, memory.y]), lr, cfg)
                accs, into_mem, conf = [], 0, collections.Counter()
                wrong_total = 0
                for m in models:
                    m.eval()
                    with torch.no_grad():
                        p = torch.cat([m(vx[i : i + 1000]).argmax(1) for i in range(0, len(vx), 1000)])
                    accs.append(100 * (p == vy).float().mean().item())
                    wrong = p != vy
                    wrong_total += int(wrong.sum())
                    into_mem += int(torch.isin(p[wrong], memory.y.unique()).sum())
                    pairs = zip(vy[wrong].tolist(), p[wrong].tolist(), strict=True)
                    conf.update(f"{NAMES[a]}→{NAMES[b]}" for a, b in pairs)
                top = ", ".join(f"{pair} {n // 3}" for pair, n in conf.most_common(3))
                share = 100 * into_mem / max(1, wrong_total)
                print(
                    f"| {order} | {k + 1} | {classes[0]}-{classes[1]} vs {sorted(memory.classes)} | {tag} | "
                    f"{' / '.join(f'{a:.1f}' for a in accs)} | {share:.0f} % | {top} |",
                    flush=True,
                )
        s = load_synthetic(d)
        for cl in classes:
            per_class[cl] = s.images[s.labels == cl]
