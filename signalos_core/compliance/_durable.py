"""The one module that imports durable-rules: an adapter that neutralises its traps.

durable-rules 2.0.28 (unmaintained since 2020) keeps module-global state, runs background threads per Host that
re-arm forever, caps live sessions at 1024 per ruleset, swallows exceptions raised in actions, rejects
exponent floats, coerces types, raises ``MessageNotHandledException`` when nothing matches, and crashes the
process if ``delete_state`` is called for a session that only ever saw an unhandled fact. Hence:

- one process-wide ``Host`` created lazily, every call under one module lock (the GIL is never released),
  and its background timer threads stopped at once (we use neither its action queue nor its timers);
- rulesets registered as a deep copy under a versioned name (no API unregisters a name);
- facts are fixed-point integers: each condition's measured value and threshold on one exact common decimal
  scale (never an exponent float), compared field against field by durable-rules; numbers too large for
  64-bit integers fall back to their difference scaled by 10⁹ and rounded *away from zero*, whose sign (all a
  comparator looks at) stays exact;
- facts, not events (an event fires one rule only), with a fresh ``uuid4`` sid per evaluation and
  ``delete_state`` in ``finally``; a catch-all rule guarantees every assert is handled, which keeps the session
  deletable and the 1024-session cap unreachable;
- the reserved keys ``id``/``sid``/``$…`` are never used for data; ``'exception'`` in the session state
  raises :class:`EngineError`.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from decimal import ROUND_UP, Decimal, localcontext
from typing import Any

from signalos_core._errors import EngineError

__all__ = ["DurableRuleset", "durable_import_error", "to_fixed", "to_fixed_pair"]

_LOCK = threading.Lock()
_HOST: Any = None
_REGISTERED: set[str] = set()
_HITS: list[str] = []
_ALWAYS = "_signalos_always"
_OPS = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte", "eq": "$eq"}
_SCALE = 9
_MAX_PLACES = 18
_LIMIT = 2**62


def durable_import_error() -> str | None:
    """``None`` when durable-rules can be imported here, else why not."""
    try:
        import durable.engine  # noqa: F401 - probing importability is the point
    except Exception as exc:
        return f"durable-rules cannot be imported on this Python: {type(exc).__name__}: {exc}"
    return None


def _host() -> Any:
    global _HOST  # noqa: PLW0603 - one Host per process (no API unregisters a ruleset name)
    if _HOST is None:
        from durable import engine

        host = engine.Host()
        _stop_dispatch_timers(host)
        _HOST = host
    return _HOST


def _stop_dispatch_timers(host: Any) -> None:
    """Stop the two ``threading.Timer`` chains a durable ``Host`` re-arms forever.

    They dispatch queued actions and durable timers every 0.1-0.5 s, which SignalOS never uses (facts are
    asserted synchronously and their actions run inside ``assert_fact``), outside our lock, and each tick
    starts and tears down a thread: ten threads a second for the life of the process. A chain re-arms from
    inside its callback, so cancel, wait for the timer's thread, and repeat until no newer timer appeared.
    """
    for attribute in ("_d_timer", "_t_timer"):
        while True:
            timer = getattr(host, attribute)
            timer.cancel()
            timer.join()
            if getattr(host, attribute) is timer:
                break


def to_fixed(measured: Decimal, threshold: Decimal) -> int:
    """``measured − threshold`` as an integer with the exact sign (scaled 10⁹, rounded away from zero)."""
    with localcontext() as ctx:
        ctx.prec = 60
        diff = (measured - threshold).scaleb(_SCALE).to_integral_value(rounding=ROUND_UP)
    value = int(diff)
    return max(-_LIMIT, min(_LIMIT, value))


def to_fixed_pair(measured: Decimal, threshold: Decimal) -> tuple[int, int]:
    """``(measured, threshold)`` as integers on one exact common scale, so durable-rules compares the metric
    with its threshold itself. Values too large for that (beyond ±2⁶²) fall back to ``(sign-exact difference,
    0)``, which every comparator treats identically."""
    places = -min(measured.as_tuple().exponent, threshold.as_tuple().exponent, 0)  # type: ignore[operator]
    if places <= _MAX_PLACES:
        with localcontext() as ctx:
            ctx.prec = 80
            a, b = int(measured.scaleb(places)), int(threshold.scaleb(places))
        if -_LIMIT <= a <= _LIMIT and -_LIMIT <= b <= _LIMIT:
            return a, b
    return to_fixed(measured, threshold), 0


def _recorder(group: str) -> Callable[[Any], None]:
    # A real closure with one parameter: durable reads ``__code__`` and treats 2-argument callables as async,
    # and rejects functools.partial.
    def run(_c: Any) -> None:
        _HITS.append(group)

    return run


def _noop(_c: Any) -> None:
    return None


class DurableRuleset:
    """A compiled profile registered with durable-rules: one rule per group (a conjunction of slots)."""

    def __init__(self, name: str, groups: dict[str, list[tuple[str, str]]]) -> None:
        reason = durable_import_error()
        if reason is not None:
            raise EngineError(reason + "; use backend='python'", backend="durable")
        self.name = name
        rules: dict[str, Any] = {}
        for group, slots in groups.items():
            # metric <op> threshold, both fields of the same fact ({"$lt": {"r0s0m": {"$m": "r0s0t"}}}).
            conds = [{_OPS[op]: {f"{key}m": {"$m": f"{key}t"}}} for key, op in slots]
            rules[group] = {"all": [{"m": {"$and": conds} if len(conds) > 1 else conds[0]}], "run": _recorder(group)}
        rules[_ALWAYS] = {"all": [{"m": {"$gte": {"k_": 0}}}], "run": _noop, "pri": 1000}
        with _LOCK:
            if name not in _REGISTERED:
                _host().set_rulesets({name: _copy_rules(rules)})
                _REGISTERED.add(name)

    def fire(self, facts: dict[str, tuple[Decimal, Decimal]]) -> set[str]:
        """Assert one fact of fixed-point slot values; return the groups whose rule fired."""
        fact: dict[str, Any] = {"k_": 0}
        for key, (measured, threshold) in facts.items():
            fact[f"{key}m"], fact[f"{key}t"] = to_fixed_pair(measured, threshold)
        with _LOCK:
            host = _host()
            sid = uuid.uuid4().hex
            fact["sid"] = sid
            _HITS.clear()
            created = False
            try:
                try:
                    host.assert_fact(self.name, fact)
                except Exception as exc:
                    if type(exc).__name__ == "MessageNotHandledException":
                        return set()  # no rule matched (unreachable with the catch-all rule, kept as a guard)
                    raise EngineError(f"durable-rules rejected the fact: {exc}", backend="durable") from exc
                created = True
                state = host.get_state(self.name, sid)
                if "exception" in state:
                    raise EngineError(f"durable-rules action failed: {state['exception']}", backend="durable")
                return set(_HITS)
            finally:
                if created:
                    host.delete_state(self.name, sid)
                _HITS.clear()


def _copy_rules(rules: dict[str, Any]) -> dict[str, Any]:
    """Deep copy except the ``run`` callables (``set_rulesets`` mutates the dict it is given)."""
    out: dict[str, Any] = {}
    for name, rule in rules.items():
        out[name] = {k: (v if k == "run" else copy.deepcopy(v)) for k, v in rule.items()}
    return out
