"""Replay memories for Avalanche built from SyntheticSets (condensed images or real-subset baselines).

`CondensedBuffer` reveals a class's images when the experience holding that class arrives, from either a
whole-dataset artifact or a `condense_fn(classes, memory)` that condenses each experience's real data on
arrival (the DC/DM continual protocol), optionally conditioned on the memory held by then. `SubsetBuffer`
is the same code fed a real-subset baseline, so condensed and real memories are treated identically.
`HerdingBuffer` is Avalanche's herding memory on penultimate features.
`LogitsBuffer` wraps any memory for DER: each sample carries the model's logits from when it entered.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from avalanche.training.storage_policy import ExemplarsBuffer, HerdingSelectionStrategy, ParametricBuffer
from torch import nn
from torch.utils.data import DataLoader

from satm_cl.continual.scenarios import tensor_dataset
from satm_cl.data import DSA
from satm_cl.errors import SatmError
from satm_cl.replay_memory import MemoryImages
from satm_cl.seeding import make_generator
from satm_cl.synthetic import SyntheticSet


class CondenseFn(Protocol):
    """Condenses the real data of `classes` on arrival; `memory` is what the buffer holds by then (None
    while empty), for a condensation conditioned on it (`satm_cl.replay_memory`); others ignore it."""

    def __call__(self, classes: list[int], memory: MemoryImages | None = None) -> SyntheticSet: ...


class DSATransform:
    """Per-sample DSA for replayed images (an Avalanche train-group transform), seeded and CPU-driven."""

    def __init__(self, strategy: str, seed: int = 0) -> None:
        self.dsa = DSA(strategy)
        self.generator = make_generator(seed, "replay-dsa")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.dsa(x.unsqueeze(0), self.generator).squeeze(0)


def experience_classes(exp: Any) -> list[int]:
    """The classes of an Avalanche experience, sorted."""
    return sorted(int(c) for c in exp.classes_in_this_experience)


class CondensedBuffer(ExemplarsBuffer):
    """Replay memory whose per-class images come from a SyntheticSet, revealed as each class arrives."""

    def __init__(
        self,
        source: SyntheticSet | CondenseFn,
        max_size: int | None = None,
        dsa: str | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(source, SyntheticSet):
            size = int(source.labels.numel()) if max_size is None else max_size
            self._set: SyntheticSet | None = source
            self._condense_fn: CondenseFn | None = None
        else:
            if max_size is None:
                raise SatmError("a CondensedBuffer fed by condense_fn needs max_size (ipc x classes)")
            size, self._set, self._condense_fn = max_size, None, source
        if size < 1:
            raise SatmError(f"memory size must be >= 1, got {size}")
        super().__init__(size)
        self._transform = DSATransform(dsa, seed) if dsa else None
        self._per_class: dict[int, torch.Tensor] = {}  # class -> images, in arrival order
        self.lrs: list[float] = [] if self._set is None else [float(self._set.lr)]

    @property
    def seen_classes(self) -> list[int]:
        return list(self._per_class)

    @property
    def lr(self) -> float:
        """The learned inner LR of the set (mean over per-experience sets when condensed on arrival)."""
        if not self.lrs:
            raise SatmError("no synthetic set has been revealed yet, so there is no learned learning rate")
        return sum(self.lrs) / len(self.lrs)

    def post_adapt(self, agent_state: Any, exp: Any) -> None:
        """Reveal the memory of the classes in `exp` (task label 0)."""
        self.add_classes(experience_classes(exp))

    def add_classes(self, classes: list[int]) -> None:
        """Add the images of `classes` not yet in memory, then re-balance to `max_size`."""
        new = [c for c in classes if c not in self._per_class]
        if not new:
            return
        source = self._set
        if source is None:
            assert self._condense_fn is not None
            source = self._condense_fn(new, self.memory_images())
            self.lrs.append(float(source.lr))
        for c in new:
            images = source.images[source.labels == c]
            if images.shape[0] == 0:
                raise SatmError(f"synthetic set ({source.meta.get('method')}) has no images of class {c}")
            self._per_class[c] = images.detach().cpu().float()
        self._rebuild()

    def memory_images(self) -> MemoryImages | None:
        """Every image revealed so far (all of each class's, whatever the quotas), or None while empty."""
        if not self._per_class:
            return None
        x = torch.cat(list(self._per_class.values()))
        y = torch.cat([torch.full((len(v),), c, dtype=torch.long) for c, v in self._per_class.items()])
        return MemoryImages(x, y)

    def quotas(self) -> dict[int, int]:
        """Slots per seen class: `max_size` split evenly (earlier classes take the remainder)."""
        n = len(self._per_class)
        if n == 0:
            return {}
        base, rem = divmod(self.max_size, n)
        return {c: base + (i < rem) for i, c in enumerate(self._per_class)}

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory as (images, labels) tensors, class by class in arrival order."""
        quotas = self.quotas()
        xs = [imgs[: quotas[c]] for c, imgs in self._per_class.items()]
        ys = [torch.full((len(x),), c, dtype=torch.long) for c, x in zip(self._per_class, xs, strict=True)]
        if not xs:
            return torch.empty(0), torch.empty(0, dtype=torch.long)
        return torch.cat(xs), torch.cat(ys)

    def resize(self, strategy: Any, new_size: int) -> None:
        """Change the capacity, keeping a per-class balanced subset."""
        if new_size < 1:
            raise SatmError(f"memory size must be >= 1, got {new_size}")
        self.max_size = new_size
        self._rebuild()

    def _rebuild(self) -> None:
        x, y = self.tensors()
        self.buffer = tensor_dataset(x, y, self._transform)


def memory_tensors(memory: ExemplarsBuffer) -> tuple[torch.Tensor, torch.Tensor]:
    """The buffer's contents as (x, y) tensors, without train-time transforms. Reading leaves the global
    RNG untouched (the loader's base seed comes from a private generator), so it cannot shift later draws."""
    if isinstance(memory, CondensedBuffer):
        return memory.tensors()
    data = memory.buffer.eval()
    xs, ys = [], []
    for x, y, *_ in DataLoader(data, batch_size=1024, shuffle=False, generator=torch.Generator()):
        xs.append(x)
        ys.append(y)
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(xs), torch.cat(ys).long()


class LogitsBuffer(ExemplarsBuffer):
    """Any memory as DER's storage: samples are (x, y, t, logits), the logits computed by the strategy's model
    when the sample first appears in the wrapped memory (after training on its experience) and kept as is."""

    def __init__(self, inner: ExemplarsBuffer) -> None:
        super().__init__(inner.max_size)
        self.inner = inner
        self._logits: dict[bytes, torch.Tensor] = {}  # sample bytes (x and y) -> logits at entry

    def post_adapt(self, agent_state: Any, exp: Any) -> None:
        """Update the wrapped memory, then give every newly entered sample its logits."""
        # DER's own update builds a DataLoader over the experience (one base-seed draw from the global RNG)
        # before its buffer samples; drawing the same keeps a run with this storage identical to DER's own
        torch.empty((), dtype=torch.int64).random_()
        self.inner.post_adapt(agent_state, exp)
        x, y = memory_tensors(self.inner)
        keys = [xi.numpy().tobytes() + int(yi).to_bytes(8, "little") for xi, yi in zip(x, y, strict=True)]
        new = [i for i, k in enumerate(keys) if k not in self._logits]
        if new:
            model = agent_state.model
            was_training = model.training
            model.eval()
            with torch.no_grad():
                out = model(x[new].to(agent_state.device)).detach().cpu()
            model.train(was_training)
            for i, row in zip(new, out, strict=True):
                self._logits[keys[i]] = row
        self._logits = {k: self._logits[k] for k in keys}
        width = next(iter(self._logits.values())).numel() if self._logits else 0
        logits = torch.stack([self._logits[k] for k in keys]) if keys else torch.empty(0, width)
        transform = self.inner._transform if isinstance(self.inner, CondensedBuffer) else None
        self.buffer = tensor_dataset(x, y, transform, extra=(logits,))

    def resize(self, strategy: Any, new_size: int) -> None:
        """Resize the wrapped memory (samples it drops lose their logits at the next update)."""
        self.inner.resize(strategy, new_size)
        self.max_size = new_size


class SubsetBuffer(CondensedBuffer):
    """A real-subset baseline (random, herding, k-center SyntheticSet) as a replay memory, same code path."""

    def __init__(
        self, subset: SyntheticSet, max_size: int | None = None, dsa: str | None = None, seed: int = 0
    ) -> None:
        if not isinstance(subset, SyntheticSet):
            raise SatmError("SubsetBuffer needs a SyntheticSet built by satm_cl.baselines")
        super().__init__(subset, max_size, dsa, seed)


class PenultimateFeatures(nn.Module):
    """Flattened input of a model's last Linear layer, exposed as the output of the `embed` submodule."""

    def __init__(self, model: nn.Module | None = None) -> None:
        super().__init__()
        self.embed = nn.Flatten()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.model is None:
            raise RuntimeError("PenultimateFeatures has no model yet")
        linears = [m for m in self.model.modules() if isinstance(m, nn.Linear)]
        captured: list[torch.Tensor] = []
        handle = linears[-1].register_forward_pre_hook(lambda _m, inp: captured.append(inp[0]))
        try:
            self.model(x)
        finally:
            handle.remove()
        out: torch.Tensor = self.embed(captured[0])
        return out


class TruncatedHerding(HerdingSelectionStrategy):
    """Avalanche's herding order, computed greedily only for the first `limit` picks.

    Avalanche orders every sample of a group (O(n²): ~150 s per Fashion-MNIST experience here)
    although a buffer keeps at most `max_size` of them; the first `limit` picks are identical and
    the rest (never kept) follow in index order.
    """

    def __init__(self, model: Any, layer_name: str, limit: int) -> None:
        super().__init__(model, layer_name)
        self.limit = limit

    def make_sorted_indices_from_features(self, features: torch.Tensor) -> list[int]:
        n = features.shape[0]
        center = features.mean(dim=0)
        current = torch.zeros_like(center)
        taken = torch.zeros(n, dtype=torch.bool)
        picks: list[int] = []
        for i in range(min(self.limit, n)):
            candidates = current * i / (i + 1) + features / (i + 1)
            dist = (candidates - center).pow(2).sum(dim=1)
            dist[taken] = float("inf")
            best = int(dist.argmin())
            picks.append(best)
            taken[best] = True
            current = candidates[best]
        return picks + [j for j in range(n) if not taken[j]]


class HerdingBuffer(ParametricBuffer):
    """Avalanche's herding memory (class-grouped `ParametricBuffer` + herding selection)."""

    def __init__(self, max_size: int, model: nn.Module | None = None) -> None:
        self.features = PenultimateFeatures(model)
        super().__init__(max_size, groupby="class",
                         selection_strategy=TruncatedHerding(self.features, "embed", max_size))
