"""Convenience entry points: built-in profile lookup, one-shot check/observe, backend availability."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from signalos_core._errors import ProfileNotFoundError
from signalos_core.compliance._builtin import builtin_index
from signalos_core.compliance._decision import Decision, Enforcement
from signalos_core.compliance._durable import durable_import_error
from signalos_core.compliance._engine import Backend, Engine
from signalos_core.compliance._loader import load_profile
from signalos_core.compliance._models import AccountState, Event, Order
from signalos_core.compliance._profile import Profile

__all__ = [
    "BuiltinProfileInfo",
    "available_backends",
    "check",
    "list_builtin_profiles",
    "load_builtin_profile",
    "observe",
]


class BuiltinProfileInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Summary of a built-in profile for listings."""

    id: str
    version: str
    title: str
    effective_from: str
    file: str


def load_builtin_profile(profile_id: str, *, params: Mapping[str, Any] | None = None) -> Profile:
    """Load the built-in profile ``profile_id`` (``ProfileNotFoundError`` with suggestions if unknown)."""
    index = builtin_index()
    entry = index.get(profile_id)
    if entry is None:
        import difflib

        near = difflib.get_close_matches(profile_id, list(index), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ProfileNotFoundError(f"no built-in profile {profile_id!r}{hint}", profile_id=profile_id)
    return load_profile(entry.read_text("utf-8"), params=params)


def list_builtin_profiles() -> list[BuiltinProfileInfo]:
    """Every built-in profile, sorted by id."""
    out = []
    for profile_id, entry in sorted(builtin_index().items()):
        profile = load_profile(entry.read_text("utf-8"))
        out.append(
            BuiltinProfileInfo(
                id=profile_id,
                version=profile.version,
                title=profile.title,
                effective_from=profile.effective_from.isoformat(),
                file=entry.name,
            )
        )
    return out


def available_backends() -> dict[str, str | None]:
    """Backend name → ``None`` if usable here, else the reason it is not."""
    return {"python": None, "durable": durable_import_error()}


def check(profile: Profile, state: AccountState, order: Order, *, backend: Backend = "python") -> Decision:
    """One-shot pre-trade check (compiles the profile; keep an :class:`Engine` for repeated checks)."""
    return Engine(profile, backend=backend).check(state, order)


def observe(profile: Profile, state: AccountState, event: Event, *, backend: Backend = "python") -> Enforcement:
    """One-shot monitoring step (compiles the profile; keep an :class:`Engine` for repeated use)."""
    return Engine(profile, backend=backend).observe(state, event)
