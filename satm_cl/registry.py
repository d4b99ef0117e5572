"""A tiny named registry: a decorator to add entries and a lookup that lists valid names on a miss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from satm_cl.errors import SatmError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; `kind` names the thing in error messages ("dataset", "arch")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise SatmError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
