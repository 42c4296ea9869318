"""Status, daily account reports (JSON and an HTML page with an inline SVG chart) and the firm report.

The status is a read-only projection: the engine observes a no-op equity reading at the current moment on a
copy of the state, and its ``evaluated`` rules give each limit's value and threshold. Headroom is the distance
to the threshold on the side the comparator allows (``measured - floor`` for floors, ``limit - measured`` for
ceilings); ``usage`` is the fraction of a loss allowance used (``(base - equity) / (base - floor)``) or
``measured / limit`` for ceilings, which is what "near the limit" means in the firm report.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from typing import Any

from service.compliance.schemas import LimitOut, LockOut, ObjectiveOut, RuleResultOut
from signalos_core.compliance import AccountState, Engine, EquityUpdate, FiredRule, ObjectiveStatus

__all__ = ["StatusView", "compute_status", "render_daily_html", "trading_day_window"]

_FLOOR_COMPARATORS = ("lt", "le")


class StatusView:
    """Limits, objectives, locks and warnings of one account at one moment."""

    def __init__(
        self,
        limits: list[LimitOut],
        objectives: list[ObjectiveOut],
        locks: list[LockOut],
        warnings: list[RuleResultOut],
    ) -> None:
        self.limits = limits
        self.objectives = objectives
        self.locks = locks
        self.warnings = warnings

    def max_usage(self) -> Decimal | None:
        """The highest usage fraction over all limits (None if none is measurable)."""
        values = [limit.usage for limit in self.limits if isinstance(limit.usage, Decimal)]
        return max(values) if values else None


def rule_out(rule: FiredRule) -> RuleResultOut:
    """A fired rule in the API's shape."""
    return RuleResultOut(
        rule_id=rule.rule_id, outcome=rule.outcome, message=rule.message, value=rule.measured,
        threshold=rule.threshold, base=rule.base, base_at=rule.base_at, reason=rule.reason,
        details={"kind": rule.kind, "comparator": rule.comparator, "base_label": rule.base_label, **rule.extra},
    )  # fmt: skip


def _limit(rule: FiredRule) -> LimitOut:
    measured, threshold = rule.measured, rule.threshold
    headroom: Decimal | None = None
    usage: Decimal | None = None
    if measured is not None and threshold is not None:
        if rule.comparator in _FLOOR_COMPARATORS:
            headroom = measured - threshold
            if rule.base is not None and rule.base != threshold:
                usage = max(Decimal(0), (rule.base - measured) / (rule.base - threshold))
        else:
            headroom = threshold - measured
            if threshold > 0:
                usage = max(Decimal(0), measured / threshold)
    return LimitOut(
        rule_id=rule.rule_id, kind=rule.kind, outcome=rule.outcome, comparator=rule.comparator, value=measured,
        threshold=threshold, headroom=headroom, usage=usage.quantize(Decimal("0.0001")) if usage is not None else None,
        message=rule.message,
    )  # fmt: skip


def _objective(status: ObjectiveStatus, kinds: dict[str, str]) -> ObjectiveOut:
    progress: Decimal | None = None
    if status.measured is not None and status.threshold is not None and status.threshold > 0:
        progress = min(Decimal(1), max(Decimal(0), status.measured / status.threshold)).quantize(Decimal("0.0001"))
    return ObjectiveOut(
        rule_id=status.rule_id, kind=kinds.get(status.rule_id, ""), value=status.measured, target=status.threshold,
        progress=progress, met=status.status == "met", message=status.message,
    )  # fmt: skip


def compute_status(engine: Engine, state: AccountState, now: dt.datetime) -> StatusView:
    """Project limits, objectives, locks and warnings of ``state`` at ``now`` (nothing is stored)."""
    at = max(now, state.as_of) if state.as_of is not None else now
    reading = EquityUpdate(
        at=at, equity=state.equity if state.equity is not None else state.balance, balance=state.balance
    )
    result = engine.observe(state, reading)
    seen: dict[str, FiredRule] = {}
    for rule in (*result.evaluated, *result.fired):
        if rule.outcome != "objective" and rule.reason in ("passed", "violated", "warning"):
            seen[rule.rule_id] = rule
    kinds = {spec.id: spec.kind for spec in engine.profile.rules}
    locks = [
        LockOut(rule_id=lock.rule_id, kind=lock.kind, since=lock.since, until=lock.until, reason=lock.reason)
        for lock in result.next_state.locks
        if lock.kind == "breach" or lock.until is None or at < lock.until
    ]
    return StatusView(
        limits=[_limit(rule) for rule in seen.values()],
        objectives=[_objective(item, kinds) for item in result.objectives],
        locks=locks,
        warnings=[rule_out(rule) for rule in result.warnings],
    )


def trading_day_window(engine: Engine, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of trading day ``day`` under the profile's day boundary (DST-correct)."""
    clock = engine.clock
    start = clock.boundary_on(day) if clock.at < dt.time(12, 0) else clock.boundary_on(day - dt.timedelta(days=1))
    return start, clock.next_start(start)


# ---------------------------------------------------------------------------------------------- HTML + SVG
_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 760, 300, 80, 20, 20, 40
_SERIES = (("equity", "#1f77b4", "Equity"), ("daily_floor", "#d62728", "Daily-loss floor"),
           ("max_floor", "#7f0000", "Maximum-loss floor"))  # fmt: skip


def _num(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


def render_chart(points: list[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> str:
    """An SVG line chart of equity against the daily-loss and max-loss floors over [start, end)."""
    values = [v for p in points for key, _c, _l in _SERIES if (v := _num(p.get(key))) is not None]
    span = (end - start).total_seconds() or 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="Equity against loss floors">',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
    ]
    if not values:
        out.append(f'<text x="{_W // 2}" y="{_H // 2}" text-anchor="middle">No equity readings this day</text>')
        out.append("</svg>")
        return "".join(out)
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    pad = (high - low) * Decimal("0.05")
    low, high = low - pad, high + pad
    plot_w, plot_h = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B

    def x_of(at: dt.datetime) -> float:
        return _PAD_L + plot_w * min(1.0, max(0.0, (at - start).total_seconds() / span))

    def y_of(value: Decimal) -> float:
        return float(_PAD_T + plot_h * (1 - (value - low) / (high - low)))

    out.append(f'<line x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{_H - _PAD_B}" stroke="#333"/>')
    out.append(f'<line x1="{_PAD_L}" y1="{_H - _PAD_B}" x2="{_W - _PAD_R}" y2="{_H - _PAD_B}" stroke="#333"/>')
    for value in (low, (low + high) / 2, high):
        y = y_of(value)
        out.append(f'<text x="{_PAD_L - 6}" y="{y:.1f}" text-anchor="end" font-size="11">{value:,.2f}</text>')
    out.append(f'<text x="{_PAD_L}" y="{_H - 8}" font-size="11">{html.escape(start.isoformat())}</text>')
    out.append(
        f'<text x="{_W - _PAD_R}" y="{_H - 8}" font-size="11" text-anchor="end">{html.escape(end.isoformat())}</text>'
    )
    for index, (key, colour, label) in enumerate(_SERIES):
        coords: list[str] = []
        for point in points:
            reading = _num(point.get(key))
            if reading is not None:
                # Floors are step functions: hold the previous level until the reading that changes it.
                x, y = x_of(point["at"]), y_of(reading)
                if key != "equity" and coords:
                    coords.append(f"{x:.1f},{coords[-1].split(',')[1]}")
                coords.append(f"{x:.1f},{y:.1f}")
        if coords:
            dash = ' stroke-dasharray="6 3"' if key != "equity" else ""
            out.append(
                f'<polyline data-series="{key}" fill="none" stroke="{colour}" stroke-width="2"{dash} '
                f'points="{" ".join(coords)}"/>'
            )
        out.append(
            f'<text x="{_PAD_L + 10 + index * 200}" y="{_PAD_T + 12}" fill="{colour}" font-size="12">{label}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _rows(items: list[dict[str, Any]], columns: list[str]) -> str:
    if not items:
        return f'<tr><td colspan="{len(columns)}">None</td></tr>'
    return "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(item.get(c, '')))}</td>" for c in columns) + "</tr>" for item in items
    )


def render_daily_html(report: Any) -> str:
    """A self-contained XHTML page (well-formed XML) for a daily report."""
    head = ["at", "rule_id", "outcome", "message"]
    objectives = [
        {"rule_id": o.rule_id, "progress": o.progress, "met": o.met, "message": o.message} for o in report.objectives
    ]
    title = html.escape(f"Compliance report {report.day.isoformat()} for account {report.account_id}")
    return (
        '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p>Profile {html.escape(str(report.profile_id))} {html.escape(str(report.version))}; status "
        f"<strong>{html.escape(report.status)}</strong>; trading day {html.escape(report.start.isoformat())} to "
        f"{html.escape(report.end.isoformat())} ({html.escape(report.timezone)}).</p>"
        f"<h2>Equity and loss floors</h2>{render_chart(report.points, report.start, report.end)}"
        "<h2>Violations</h2><table><thead><tr><th>Time</th><th>Rule</th><th>Outcome</th><th>Message</th></tr>"
        f"</thead><tbody>{_rows(report.violations, head)}</tbody></table>"
        "<h2>Warnings</h2><table><thead><tr><th>Time</th><th>Rule</th><th>Outcome</th><th>Message</th></tr>"
        f"</thead><tbody>{_rows(report.warnings, head)}</tbody></table>"
        "<h2>Objectives</h2><table><thead><tr><th>Rule</th><th>Progress</th><th>Met</th><th>Message</th></tr>"
        f"</thead><tbody>{_rows(objectives, ['rule_id', 'progress', 'met', 'message'])}</tbody></table>"
        "</body></html>"
    )
