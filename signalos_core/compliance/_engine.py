"""The engine: compile a profile into condition slots, run them on a backend, explain every decision.

Compilation turns each rule into a *group* of condition slots (``r3s0``, ``r3s1`` ...) with resolved
comparators, plus warn slots (``r3w0`` ...) for warn thresholds. At run time the rule kinds measure Decimal
numbers in Python; the backend only decides which groups hold. The ``python`` backend evaluates compiled
predicates; the ``durable`` backend asserts fixed-point facts into durable-rules (see :mod:`._durable`). Both
get the same numbers, so their decisions are identical (a hypothesis test checks it).
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import msgspec

from signalos_core._errors import EngineError, ProfileSchemaError
from signalos_core.compliance._calendar import DayClock
from signalos_core.compliance._decision import (
    Action,
    Decision,
    Enforcement,
    FiredRule,
    ObjectiveStatus,
    ProfileRef,
)
from signalos_core.compliance._durable import DurableRuleset
from signalos_core.compliance._instruments import InstrumentCatalog, default_catalog
from signalos_core.compliance._kinds_base import CMP, Ctx, KindSpec, Measure, Metric, Missing, Phase, money
from signalos_core.compliance._loader import profile_hash
from signalos_core.compliance._models import AccountState, Event, Fill, Lock, Order
from signalos_core.compliance._profile import Profile, RuleSpec
from signalos_core.compliance._registry import KINDS
from signalos_core.compliance._state import apply_event, expire_locks
from signalos_core.compliance._validate import validate, validate_order, validate_state

__all__ = ["BACKENDS", "Engine"]

BACKENDS = ("python", "durable")
Backend = Literal["python", "durable"]
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
}
_SYMBOL = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=="}
_BLOCKING = frozenset({"deny", "breach", "lock"})


@dataclass(frozen=True, slots=True)
class _Rule:
    index: int
    spec: RuleSpec
    kind: KindSpec
    params: Any
    group: str
    slots: tuple[tuple[str, str, int], ...]
    warn: tuple[tuple[str, str, Decimal], ...]
    primary: int
    flatten: bool
    grandfathered: bool
    measure: Callable[[Ctx, Any, Phase], Measure | Missing | None]


class _PythonBackend:
    """Compiled predicates: per group a tuple of (slot key, comparison function).

    Groups are indexed by their first slot key, so a check only visits the groups of rules that measured
    something (objective and not-applicable rules cost nothing in a pre-trade check).
    """

    name = "python"

    def __init__(self, groups: dict[str, list[tuple[str, str]]]) -> None:
        self._by_first: dict[str, list[tuple[str, tuple[tuple[str, Callable[[Any, Any], bool]], ...]]]] = {}
        for group, slots in groups.items():
            compiled = tuple((key, _PY_OPS[op]) for key, op in slots)
            self._by_first.setdefault(slots[0][0], []).append((group, compiled))

    def fire(self, facts: dict[str, tuple[Decimal, Decimal]]) -> set[str]:
        hits: set[str] = set()
        for first in facts:
            for group, slots in self._by_first.get(first, ()):
                for key, test in slots:
                    pair = facts.get(key)
                    if pair is None or not test(pair[0], pair[1]):
                        break
                else:
                    hits.add(group)
        return hits


def _fmt(metric: Metric, value: Decimal) -> str:
    return money(value) if metric.money else f"{value.normalize():f}"


class Engine:
    """A compiled profile bound to a backend. Thread-safe: evaluation keeps no mutable state.

    ``check(state, order)`` is the pre-trade decision (``explain_passed=True`` also lists the rules that held,
    with their numbers and messages, in ``Decision.evaluated``; that costs latency, so it is off by default); ``observe(state, event)`` the monitoring step that
    returns enforcement actions and the next state. ``backend='durable'`` raises :class:`EngineError` where
    durable-rules cannot be imported (Python 3.13+); the default ``python`` backend always works.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        backend: Backend = "python",
        instruments: InstrumentCatalog | None = None,
        explain_passed: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise EngineError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}", backend=backend)
        self.profile = profile
        self.explain_passed = explain_passed
        self._effective_from = profile.effective_from
        self._effective_until = profile.effective_until
        self.hash = profile_hash(profile)
        self.clock = DayClock(profile.day_boundary.timezone, profile.day_boundary.at)
        self.catalog = instruments or default_catalog()
        self.ref = ProfileRef(id=profile.id, version=profile.version, hash=self.hash, backend=backend)
        account_size = profile.parameters.get("account_size") or profile.parameters.get("initial_balance")
        default = account_size.default if account_size is not None else None
        self._default_initial = Decimal(default) if isinstance(default, (Decimal, int)) else None
        self._rules: list[_Rule] = []
        groups: dict[str, list[tuple[str, str]]] = {}
        for index, spec in enumerate(profile.rules):
            rule = self._compile(index, spec)
            self._rules.append(rule)
            groups[rule.group] = [(key, op) for key, op, _ in rule.slots]
            for group, key, _fraction in rule.warn:
                groups[group] = [(key, "ge")]
        self._by_phase: dict[Phase, list[_Rule]] = {
            phase: [r for r in self._rules if phase in r.kind.phases] for phase in ("pre_trade", "monitor", "objective")
        }
        # Closing/reducing orders meet only the pre-trade rules that still apply to them (FIFO, news, PDT).
        self._reducing_rules = [r for r in self._by_phase["pre_trade"] if r.kind.applies_to_reducing]
        if backend == "durable":
            safe_version = re.sub(r"[^A-Za-z0-9_-]", "_", profile.version)
            self._backend: Any = DurableRuleset(f"{profile.id}.v{safe_version}.{self.hash[:12]}", groups)
        else:
            self._backend = _PythonBackend(groups)
        self.backend = backend

    @staticmethod
    def _compile(index: int, spec: RuleSpec) -> _Rule:
        # A Profile built in Python skips the loader, so compilation re-checks what the loader guarantees.
        kind = KINDS.get(spec.kind)
        if kind is None:
            raise ProfileSchemaError(f"rule {spec.id}: unknown rule kind {spec.kind!r}", issues=[spec.id])
        try:
            params = msgspec.convert(spec.params, kind.params)
        except msgspec.ValidationError as exc:
            raise ProfileSchemaError(f"rule {spec.id}: {exc}", issues=[spec.id]) from exc
        comparator = spec.breach_when
        if kind.needs_comparator and comparator is None:
            raise ProfileSchemaError(f"rule {spec.id}: kind {spec.kind} needs breach_when", issues=[spec.id])
        group = f"r{index}"
        slots = tuple(
            (f"{group}s{j}", (comparator or "") if slot.op == CMP else slot.op, j) for j, slot in enumerate(kind.slots)
        )
        primary = next((j for j, slot in enumerate(kind.slots) if slot.op == CMP), 0)
        warn = tuple((f"{group}w{k}", f"{group}w{k}", fraction) for k, fraction in enumerate(sorted(spec.warn_at)))
        flatten = spec.flatten if spec.flatten is not None else spec.outcome in ("breach", "lock")
        grandfathered = spec.accounts_created_from is not None or spec.accounts_created_before is not None
        return _Rule(index, spec, kind, params, group, slots, warn, primary, flatten, grandfathered, kind.measure)

    @staticmethod
    def _covers(spec: RuleSpec, created: dt.datetime | None) -> bool:
        """Whether an account opened at ``created`` (``None`` = unknown) is subject to a grandfathered rule."""
        if created is None:
            return spec.if_created_unknown == "apply"
        if spec.accounts_created_from is not None and created < spec.accounts_created_from:
            return False
        return spec.accounts_created_before is None or created < spec.accounts_created_before

    # -- explanation ------------------------------------------------------------------------------------------
    def _result(self, rule: _Rule, m: Measure, reason: Any) -> FiredRule:
        main = m.metrics[rule.primary]
        parts = []
        for key, op, j in rule.slots:
            metric = m.metrics[j]
            if metric is not None:
                parts.append(
                    f"{metric.label} {_fmt(metric, metric.value)} {_SYMBOL[op]} "
                    f"{metric.threshold_label} {_fmt(metric, metric.threshold)}"
                )
            del key
        message = "; ".join(parts)
        if m.base is not None:
            where = f" at {self.clock.fmt(m.base_at)}" if m.base_at is not None else f", {m.base_label}"
            message += f" (base {money(m.base)}{where})"
        if m.note:
            message += f" [{m.note}]"
        comparator = rule.slots[rule.primary][1]
        headroom = None
        if main is not None and comparator in ("lt", "le"):
            headroom = main.value - main.threshold  # a floor: how far above it the measured value is
        elif main is not None and comparator in ("gt", "ge"):
            headroom = main.threshold - main.value  # a ceiling: how far below it
        return FiredRule(
            rule_id=rule.spec.id,
            kind=rule.kind.name,
            outcome=rule.spec.outcome,
            reason=reason,
            message=message,
            measured=main.value if main else None,
            threshold=main.threshold if main else None,
            comparator=comparator,
            headroom=headroom,
            base=m.base,
            base_label=m.base_label,
            base_at=m.base_at,
            extra=m.extra,
        )

    @staticmethod
    def _missing(rule: _Rule, miss: Missing) -> FiredRule:
        return FiredRule(
            rule_id=rule.spec.id,
            kind=rule.kind.name,
            outcome=rule.spec.outcome,
            reason="missing_input",
            message=f"missing input {miss.field}: the rule cannot be evaluated, so it fails closed",
            missing_field=miss.field,
        )

    # -- evaluation -------------------------------------------------------------------------------------------
    def _run(
        self, ctx: Ctx, phase: Phase, reducing: bool, *, explain_passed: bool = True, notes: list[str] | None = None
    ) -> tuple[list[FiredRule], list[FiredRule], list[Any]]:
        """(fired, warnings, evaluated-or-objectives) for one phase.

        With ``explain_passed=False`` rules that held are not listed (their notes go to ``notes``): the
        pre-trade hot path then builds no result objects for the common all-clear case.
        """
        facts: dict[str, tuple[Decimal, Decimal]] = {}
        pending: list[tuple[_Rule, Measure]] = []
        fired: list[FiredRule] = []
        missing: list[tuple[_Rule, Missing]] = []
        rules = self._reducing_rules if reducing else self._by_phase[phase]
        created = ctx.state.created_at
        for rule in rules:
            if rule.grandfathered and not self._covers(rule.spec, created):
                continue
            m = rule.measure(ctx, rule.params, phase)
            if m is None:
                continue
            if isinstance(m, Missing):
                missing.append((rule, m))
                continue
            metrics = m.metrics
            for key, _op, j in rule.slots:
                metric = metrics[j]
                if metric is not None:
                    facts[key] = (metric.value, metric.threshold)
            if rule.warn and m.usage is not None:
                used, limit = m.usage
                for _group, key, fraction in rule.warn:
                    facts[key] = (used, limit * fraction)
            pending.append((rule, m))
        hits = self._backend.fire(facts) if facts else set()
        if phase == "objective":
            statuses: list[ObjectiveStatus] = []
            for rule, m in pending:
                met = rule.group in hits
                res = self._result(rule, m, "passed")
                statuses.append(
                    ObjectiveStatus(
                        rule_id=rule.spec.id,
                        status="met" if met else "not_met",
                        message=res.message,
                        measured=res.measured,
                        threshold=res.threshold,
                        extra=m.extra,
                    )
                )
            for rule, miss in missing:
                statuses.append(
                    ObjectiveStatus(
                        rule_id=rule.spec.id, status="missing_input", message=self._missing(rule, miss).message
                    )
                )
            return [], [], statuses
        warnings: list[FiredRule] = []
        evaluated: list[FiredRule] = []
        fired.extend(self._missing(rule, miss) for rule, miss in missing)
        for rule, m in pending:
            if rule.group in hits:
                (warnings if rule.spec.outcome == "warn" else fired).append(self._result(rule, m, "violated"))
                continue
            if explain_passed:
                evaluated.append(self._result(rule, m, "passed"))
            elif m.note and notes is not None:
                notes.append(f"{rule.spec.id}: {m.note}")
            if not hits:
                continue
            for group, _key, fraction in reversed(rule.warn):
                if group in hits:
                    res = self._result(rule, m, "warning")
                    used, limit = m.usage or (Decimal(0), Decimal(0))
                    main = m.metrics[rule.primary]
                    now = (
                        (
                            f"; {main.label} {_fmt(main, main.value)}, {main.threshold_label} "
                            f"{_fmt(main, main.threshold)}"
                        )
                        if main is not None
                        else ""
                    )
                    warnings.append(
                        msgspec.structs.replace(
                            res,
                            outcome="warn",
                            message=f"{money(used)} of {money(limit)} allowance used ({fraction:.0%} warning level){now}",
                        )
                    )
                    break
        return fired, warnings, evaluated

    def _ctx(self, state: AccountState, at: Any, order: Order | None = None, event: Event | None = None) -> Ctx:
        return Ctx(
            state,
            at,
            clock=self.clock,
            catalog=self.catalog,
            default_initial=self._default_initial,
            order=order,
            event=event,
        )

    def check(self, state: AccountState, order: Order) -> Decision:
        """Pre-trade decision for ``order`` on ``state``: allowed, or denied with every rule that fired.

        An active lock refuses new risk (reduce-only orders stay allowed); a breach lock refuses it forever.
        """
        validate_state(state)
        validate_order(order)
        self.catalog.get(order.symbol, field="order.symbol")
        ctx = self._ctx(state, order.at, order=order)
        reducing = order.intent != "open"
        notes: list[str] = []
        fired, warnings, evaluated = self._run(
            ctx, "pre_trade", reducing, explain_passed=self.explain_passed, notes=notes
        )
        if state.locks and not reducing:
            fired = self._lock_firings(state, order.at) + fired
        if not self._in_force(order.at):
            notes.append(self._not_in_force(order.at))
        allowed = not any(f.outcome in _BLOCKING for f in fired)
        return Decision(
            allowed=allowed,
            at=order.at,
            profile=self.ref,
            fired=fired,
            warnings=warnings,
            evaluated=evaluated,
            notes=notes,
        )

    def _in_force(self, at: dt.datetime) -> bool:
        day = at.date()
        return self._effective_from <= day and (self._effective_until is None or day <= self._effective_until)

    def _not_in_force(self, at: dt.datetime) -> str:
        until = f" until {self._effective_until}" if self._effective_until else ""
        return (
            f"profile {self.profile.id} {self.profile.version} is in force from {self._effective_from}{until}; "
            f"{at.date()} is outside that window"
        )

    def _lock_firings(self, state: AccountState, at: Any) -> list[FiredRule]:
        out = []
        for lock in state.locks:
            if lock.kind == "breach" or lock.until is None or at < lock.until:
                until = f" until {self.clock.fmt(lock.until)}" if lock.until is not None else " permanently"
                out.append(
                    FiredRule(
                        rule_id=lock.rule_id,
                        kind="lock",
                        outcome="breach" if lock.kind == "breach" else "lock",
                        reason="breached" if lock.kind == "breach" else "locked",
                        message=f"account {'breached' if lock.kind == 'breach' else 'locked'} by {lock.rule_id}{until}; "
                        f"only reduce-only orders are allowed" + (f" ({lock.reason})" if lock.reason else ""),
                        extra={"until": lock.until.isoformat()} if lock.until is not None else {},
                    )
                )
        return out

    def observe(self, state: AccountState, event: Event) -> Enforcement:
        """Monitoring step: apply ``event``, evaluate monitoring rules and objectives, return actions + next state."""
        validate_state(state)
        validate(event, "event")
        if isinstance(event, Fill):
            self.catalog.get(event.symbol, field="event.symbol")
        at = event.at
        actions: list[Action] = []
        state, expired = expire_locks(state, at)
        actions.extend(
            Action(type="unlock", rule_id=lock.rule_id, message=f"lock by {lock.rule_id} lifted") for lock in expired
        )
        state = apply_event(state, event, self.clock, self.catalog)
        ctx = self._ctx(state, at, event=event)
        fired, warnings, evaluated = self._run(ctx, "monitor", False)
        # Monitoring cannot "deny"; a rule without its data is reported (and warned about), never a breach.
        warnings = [f for f in fired if f.reason == "missing_input"] + warnings
        fired = [f for f in fired if f.reason != "missing_input"]
        _f, _w, objectives = self._run(ctx, "objective", False)
        locks = list(state.locks)
        flatten_for: list[str] = []
        for item in fired:
            rule = next(r for r in self._rules if r.spec.id == item.rule_id)
            if item.outcome == "breach" and rule.spec.terminal:
                actions.append(Action(type="breach", rule_id=item.rule_id, message=item.message, terminal=True))
                if not any(lk.rule_id == item.rule_id and lk.kind == "breach" for lk in locks):
                    locks.append(Lock(rule_id=item.rule_id, kind="breach", since=at, reason=item.message))
            elif item.outcome == "lock":
                until = self.clock.next_start(at)
                actions.append(Action(type="lock", rule_id=item.rule_id, message=item.message, until=until))
                if not any(lk.rule_id == item.rule_id and lk.until == until for lk in locks):
                    locks.append(Lock(rule_id=item.rule_id, kind="lock", since=at, until=until, reason=item.message))
            else:
                actions.append(Action(type="violation", rule_id=item.rule_id, message=item.message))
            if rule.flatten and state.positions:
                flatten_for.append(item.rule_id)
        actions.extend(Action(type="flatten", rule_id=rid, message="close all open positions") for rid in flatten_for)
        actions.extend(Action(type="warn", rule_id=w.rule_id, message=w.message) for w in warnings)
        next_state = msgspec.structs.replace(state, locks=locks) if locks != state.locks else state
        kinds = {a.type for a in actions}
        outcome: Literal["allow", "warn", "lock", "breach"] = (
            "breach"
            if kinds & {"breach", "violation"}
            else "lock"
            if "lock" in kinds
            else "warn"
            if "warn" in kinds
            else "allow"
        )
        notes = [] if self._in_force(at) else [self._not_in_force(at)]
        return Enforcement(
            outcome=outcome,
            at=at,
            profile=self.ref,
            actions=actions,
            fired=fired,
            warnings=warnings,
            objectives=objectives,
            next_state=next_state,
            evaluated=evaluated,
            notes=notes,
        )

    def objectives(self, state: AccountState, at: Any) -> list[ObjectiveStatus]:
        """Objective progress for ``state`` at ``at`` without applying any event."""
        validate_state(state)
        _f, _w, statuses = self._run(self._ctx(state, at), "objective", False)
        return list(statuses)
