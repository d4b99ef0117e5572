"""Why stream-condensed memories underperform here: LR or images? (prints the numbers in README.md)

Trains a fresh ConvNet (100 epochs, the retrain protocol's settings) on the union of class order 0's five
stream-condensed sets, on the offline SATM set and on the random real subset, at two LRs; then prints the
pixel std of every set (model-input space; real images: ~1). Run from the repository root after run.sh.
"""

import glob

import torch

from satm_cl.continual.presets import condense_config
from satm_cl.continual.scenarios import draw_class_order
from satm_cl.data import create_dataset
from satm_cl.models import create_model
from satm_cl.seeding import make_generator
from satm_cl.synthetic import load_synthetic
from satm_cl.training import TrainConfig, accuracy, train_model

R = "results/continual/digits-stream/memories"
order = draw_class_order(10, 0)
pairs = [sorted(order[i : i + 2]) for i in range(0, 10, 2)]
sets = [load_synthetic(f"{R}/stream/digits-ipc10-satm-classes{a}-{b}") for a, b in pairs]
x, y = torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets])
off, rnd = load_synthetic(f"{R}/digits-ipc10-satm"), load_synthetic(f"{R}/digits-ipc10-random-seed0")
splits = create_dataset("digits")
prep = off.preprocessor()
tx, ty = prep.transform(splits.test.x), splits.test.y
cfg = condense_config("digits", 10)


def run(xx: torch.Tensor, yy: torch.Tensor, lr: float) -> float:
    m = create_model("convnet", 1, 10, (8, 8), seed=1, **cfg.expert.arch_kwargs)
    train_model(m, xx, yy, TrainConfig(epochs=100, lr=lr, dsa=cfg.dsa), make_generator(0, "d"))
    return round(accuracy(m, tx, ty), 1)


print("stream sets' mean learned lr", round(sum(float(s.lr) for s in sets) / 5, 4))
for lr in (0.02, 0.05):
    print(
        f"lr {lr}: stream {run(x, y, lr)}  offline {run(off.images, off.labels, lr)}  "
        f"random {run(rnd.images, rnd.labels, lr)}"
    )
print("pixel std: offline IPC 10", round(off.images.std().item(), 2))
for ipc in (10, 1):
    stds = sorted(
        round(load_synthetic(p).images.std().item(), 1) for p in glob.glob(f"{R}/stream/*ipc{ipc}-*")
    )
    print(f"pixel std: stream IPC {ipc} sets", stds)
