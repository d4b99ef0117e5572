"""Check values (often straight from a JSON file) against a frozen dataclass's declared field types."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from satm_cl.errors import SatmError

_HINTS: dict[type, dict[str, Any]] = {}

# Names of the forward-pass precisions (`satm_cl.training.PRECISIONS` maps them to dtypes); here so the
# torch-free configs can check a name.
PRECISION_NAMES = ("fp32", "bf16")


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if origin is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return isinstance(value, tuple) and all(_type_ok(v, args[0]) for v in value)
    if hint is Any:
        return True
    return isinstance(value, hint) if isinstance(hint, type) else True


def _name(hint: Any) -> str:
    return str(hint).replace("typing.", "") if not isinstance(hint, type) else hint.__name__


def check_field_types(obj: Any, what: str) -> None:
    """A SatmError naming the first field of dataclass `obj` whose value does not have its declared type
    (so range checks that follow never compare a string with a number)."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _type_ok(value, hints[f.name]):
            raise SatmError(f"bad {what}: {f.name} must be {_name(hints[f.name])}, got {value!r:.60}")


def omit_late_defaults(d: dict[str, Any], late: dict[str, Any]) -> dict[str, Any]:
    """`d` without the keys of `late` whose value is still `late`'s default (a config's dict form stays
    what it was before those settings existed, so hashes and recorded configs of older runs still match)."""
    return {k: v for k, v in d.items() if not (k in late and v == late[k])}
