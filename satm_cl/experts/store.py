"""TrajectoryStore: a directory of expert trajectories named from a hash of its settings.

Layout: `manifest.json` (settings, parameter layout, package versions, per-expert accuracies)
and `expert_000.safetensors`, ... each holding `trajectory` float32 [epochs+1, P] (flat
parameters at every epoch, epoch 0 = initialisation). Each expert file is written atomically
before the manifest lists it, so an interrupted run resumes and never trusts a partial file.
Workers adding experts to one store concurrently (`satm-cl experts --jobs N` / Ray) each re-read
the manifest under a file lock and merge their entry, so none is lost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from satm_cl.errors import SatmError
from satm_cl.experts.config import ExpertConfig
from satm_cl.io import config_hash, locked, sha256_file, write_json, write_tensors

FORMAT_VERSION = 1


def store_path(root: Path, cfg: ExpertConfig) -> Path:
    """The store directory for `cfg` under a cache root."""
    return root / "experts" / f"{cfg.dataset}-{cfg.arch}-{config_hash(cfg.identity())}"


class TrajectoryStore:
    """Read/write access to one store directory."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._verified: dict[int, tuple[int, int, str | None]] = {}

    @classmethod
    def create_or_open(
        cls, path: Path, cfg: ExpertConfig, layout: dict[str, Any], versions: dict[str, str]
    ) -> TrajectoryStore:
        """Open an existing store with the same settings, or start an empty one."""
        mf = path / "manifest.json"
        with locked(mf):
            if mf.exists():
                store = cls.open(path)
                if store.manifest["config"] != {**cfg.identity()}:
                    raise SatmError(f"{mf}: settings differ from the requested ones; remove the directory")
                return store
            return cls._create(path, cfg, layout, versions)

    @classmethod
    def _create(
        cls, path: Path, cfg: ExpertConfig, layout: dict[str, Any], versions: dict[str, str]
    ) -> TrajectoryStore:
        mf = path / "manifest.json"
        manifest = {
            "format_version": FORMAT_VERSION,
            "config": cfg.identity(),
            "layout": layout,
            "numel": sum(math.prod(shape) for shape in layout["shapes"]),
            "versions": versions,
            "experts": {},
        }
        write_json(mf, manifest)
        return cls(path, manifest)

    @classmethod
    def open(cls, path: Path) -> TrajectoryStore:
        """Open a store; a missing or unreadable manifest is a one-line error naming the file."""
        mf = Path(path) / "manifest.json"
        try:
            manifest = json.loads(mf.read_text())
            shape_ok = (
                isinstance(manifest["config"], dict)
                and isinstance(manifest["config"].get("epochs"), int)
                and isinstance(manifest["layout"], dict)
                and isinstance(manifest["numel"], int)
                and isinstance(manifest["experts"], dict)
                and all(isinstance(e, dict) and str(k).isdigit() for k, e in manifest["experts"].items())
            )
            if not shape_ok:
                raise TypeError
        except FileNotFoundError:
            raise SatmError(f"no expert store at {path} (missing {mf.name}); run `satm-cl experts`") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            raise SatmError(f"unreadable expert manifest {mf}") from None
        if manifest.get("format_version") != FORMAT_VERSION:
            raise SatmError(
                f"{mf}: format version {manifest.get('format_version')!r} unsupported (want {FORMAT_VERSION})"
            )
        return cls(Path(path), manifest)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest["config"])

    @property
    def epochs(self) -> int:
        return int(self.manifest["config"]["epochs"])

    def file(self, index: int) -> Path:
        return self.path / f"expert_{index:03d}.safetensors"

    def done(self, only: Iterable[int] | None = None) -> list[int]:
        """Indices of experts (of `only`, default all) listed as complete whose file matches its hash."""
        out = []
        wanted = None if only is None else {str(i) for i in only}
        for key, entry in sorted(self.manifest["experts"].items(), key=lambda kv: int(kv[0])):
            if wanted is not None and key not in wanted:
                continue
            f = self.file(int(key))
            if not f.exists() or not isinstance(entry, dict):
                continue
            stat = f.stat()
            stamp = (stat.st_size, stat.st_mtime_ns, entry.get("sha256"))
            # hash each file once per (size, mtime): stores of 100 CIFAR experts are gigabytes
            if self._verified.get(int(key)) == stamp or sha256_file(f) == entry.get("sha256"):
                self._verified[int(key)] = stamp
                out.append(int(key))
        return out

    def finished(self, index: int) -> bool:
        """Whether expert `index` is complete on disk now, another process's work included (re-reads the
        manifest)."""
        mf = self.path / "manifest.json"
        with locked(mf):
            on_disk = json.loads(mf.read_text())["experts"] if mf.exists() else {}
        self.manifest["experts"] = {**self.manifest["experts"], **on_disk}
        return index in self.done([index])

    def add(
        self, index: int, trajectory: torch.Tensor, accuracies: dict[str, list[float]],
        made_on: str | None = None,
    ) -> None:
        """Write expert `index` atomically, then list it in the manifest (also atomically); `made_on`: the
        kernels it trained on (`device.kernels`), kept as provenance."""
        expected = (self.epochs + 1, int(self.manifest["numel"]))
        if tuple(trajectory.shape) != expected:
            raise ValueError(f"trajectory shape {tuple(trajectory.shape)} != {expected}")
        f = self.file(index)
        write_tensors(f, {"trajectory": trajectory.float()})
        entry: dict[str, Any] = {"sha256": sha256_file(f), "accuracy": accuracies,
                                 "torch_threads": torch.get_num_threads()}
        if made_on is not None:
            entry["kernels"] = made_on
        mf = self.path / "manifest.json"
        with locked(mf):  # other workers may have listed their experts since this store was opened
            on_disk = json.loads(mf.read_text())["experts"] if mf.exists() else {}
            self.manifest["experts"] = {**self.manifest["experts"], **on_disk, str(index): entry}
            write_json(mf, self.manifest)

    def check_file(self, index: int) -> None:
        """Read expert `index`'s header only: a file that cannot serve trajectories is refused up front."""
        self.load_epochs(index, [])

    def load_epochs(self, index: int, epochs: list[int]) -> torch.Tensor:
        """Flat parameters of expert `index` at `epochs`, [len(epochs), P], reading only those rows."""
        f = self.file(index)
        try:
            with safe_open(str(f), framework="pt") as fh:
                sl = fh.get_slice("trajectory")
                shape = sl.get_shape()
                if shape != [self.epochs + 1, int(self.manifest["numel"])]:
                    raise SatmError(f"{f}: trajectory shape {shape} does not match its manifest")
                if not epochs:
                    return torch.empty(0, shape[1])
                return torch.cat([sl[e : e + 1] for e in epochs])
        except (SafetensorError, OSError, KeyError) as exc:
            raise SatmError(f"unreadable expert file {f}: {str(exc).splitlines()[0]}") from None
