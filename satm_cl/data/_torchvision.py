"""Open a torchvision dataset class, turning its missing-file errors into one-line SatmErrors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from satm_cl.data._common import not_found
from satm_cl.errors import SatmError

T = TypeVar("T")

TORCHVISION_HINT = "or fetch it first with `satm-cl download NAME --data-dir DIR` on a machine with internet"
# the datasets torchvision can download for us (the others: the user places their files in --data-dir)
DOWNLOADABLE = ("cifar10", "cifar100", "mnist", "svhn")


def open_torchvision(name: str, root: Path, download: bool, factory: Callable[[], T]) -> T:
    """Call `factory()` (a torchvision dataset constructor); missing/corrupt files become a SatmError."""
    try:
        return factory()
    except RuntimeError:
        raise not_found(name, root, TORCHVISION_HINT) from None
    except OSError as exc:
        if download:
            raise SatmError(
                f"dataset {name}: download into {root} failed ({exc})".replace("\n", " ")
            ) from None
        raise not_found(name, root, TORCHVISION_HINT) from None


def torchvision_status(name: str, root: Path | None, marker: str) -> str:
    """Status of a torchvision dataset: "ready" when `root/marker` exists, else the --data-dir hint."""
    if root is not None and (Path(root).expanduser() / marker).exists():
        return "ready"
    return (f"needs --data-dir (torchvision layout with {marker}; `satm-cl download {name} --data-dir DIR` "
            "fetches it on a machine with internet)")
