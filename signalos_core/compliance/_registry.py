"""The documented library of rule kinds (importing the kind modules registers them)."""

from __future__ import annotations

from signalos_core.compliance import _kinds_loss, _kinds_objectives, _kinds_orders, _kinds_time
from signalos_core.compliance._kinds_base import KINDS, KindSpec

__all__ = ["KINDS", "KindSpec", "kind_names"]

_LOADED = (_kinds_loss, _kinds_objectives, _kinds_orders, _kinds_time)


def kind_names() -> list[str]:
    """Sorted names of every registered rule kind."""
    return sorted(KINDS)
