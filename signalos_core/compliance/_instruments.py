"""Instrument metadata and per-regime classification (ESMA vs NFA majors, gold, indices, crypto, equities).

The same symbol belongs to different classes under different regulators: AUD/USD is a *major* under NFA
(50:1) but *non-major* under ESMA/ASIC (20:1); gold is 20:1 under ESMA and not retail forex at all under NFA.
The data lives in ``_data/instruments.yaml`` so a deployment can extend it without code changes.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

import msgspec

from signalos_core._errors import EvaluationError
from signalos_core.compliance._yaml import read_yaml

__all__ = ["Instrument", "InstrumentCatalog", "default_catalog"]

AssetClass = Literal["fx", "metal", "index", "commodity", "equity", "crypto"]
_FUTURES = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ])(\d{1,2})$")
_FX_SYMBOL = re.compile(r"^([A-Z]{3})/?([A-Z]{3})$")


class Instrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One tradable instrument. ``contract_size`` is units per lot; futures use ``point_value`` per contract."""

    symbol: str
    asset_class: AssetClass
    quote: str
    base: str | None = None
    contract_size: Decimal = Decimal(1)
    point_value: Decimal | None = None
    tick: Decimal | None = None
    futures: bool = False
    micro: bool = False
    metal: str | None = None
    index: str | None = None
    aliases: list[str] = msgspec.field(default_factory=list)

    @property
    def value_per_point(self) -> Decimal:
        """Account-currency value (in quote currency) of a one-unit price move for one lot/contract."""
        return self.point_value if self.point_value is not None else self.contract_size


class _Regime(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    major_currencies: list[str]
    major_indices: list[str] = msgspec.field(default_factory=list)


class _Fx(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    contract_size: Decimal
    currencies: list[str]


class _CatalogData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    regimes: dict[str, _Regime]
    fx: _Fx
    instruments: list[Instrument]


class InstrumentCatalog:
    """Symbol lookup (exact, alias, FX pair, futures contract month) and regime classification."""

    def __init__(self, data: _CatalogData) -> None:
        self._data = data
        self._by_symbol: dict[str, Instrument] = {}
        for inst in data.instruments:
            for name in (inst.symbol, *inst.aliases):
                self._by_symbol[name.upper()] = inst
        self._fx_currencies = frozenset(data.fx.currencies)
        self._cache: dict[str, Instrument] = {}

    @classmethod
    def from_yaml(cls, text: str | bytes) -> InstrumentCatalog:
        """Build a catalog from YAML in the ``_data/instruments.yaml`` format."""
        raw, _marks, issues = read_yaml(text)
        if issues:
            raise EvaluationError(f"instrument data: {issues[0]}", field=issues[0].path)
        try:
            return cls(msgspec.convert(raw, _CatalogData))
        except msgspec.ValidationError as exc:
            raise EvaluationError(f"instrument data: {exc}", field="instruments") from exc

    def extended(self, instruments: list[Instrument]) -> InstrumentCatalog:
        """A new catalog with ``instruments`` added (same symbol replaces the built-in entry)."""
        names = {i.symbol for i in instruments}
        kept = [i for i in self._data.instruments if i.symbol not in names]
        return InstrumentCatalog(msgspec.structs.replace(self._data, instruments=[*kept, *instruments]))

    def get(self, symbol: str, *, field: str = "symbol") -> Instrument:
        """Resolve ``symbol``; an unknown symbol raises :class:`EvaluationError` (never a silent allow)."""
        hit = self._cache.get(symbol)
        if hit is not None:
            return hit
        key = symbol.upper()
        inst = self._by_symbol.get(key)
        if inst is None:
            inst = self._resolve_pattern(key)
        if inst is None:
            raise EvaluationError(f"unknown instrument {symbol!r}", field=field)
        self._cache[symbol] = inst
        return inst

    def _resolve_pattern(self, key: str) -> Instrument | None:
        fx = _FX_SYMBOL.match(key)
        if fx and fx.group(1) in self._fx_currencies and fx.group(2) in self._fx_currencies:
            return Instrument(
                symbol=fx.group(1) + fx.group(2),
                asset_class="fx",
                base=fx.group(1),
                quote=fx.group(2),
                contract_size=self._data.fx.contract_size,
            )
        fut = _FUTURES.match(key)
        if fut:
            root = self._by_symbol.get(fut.group(1))
            if root is not None and root.futures:
                return root
        # Broker suffixes on shares ("AAPL.US", "AAPL.NAS", "AAPL.OQ"): the listing, not the instrument.
        stem, dot, _suffix = key.partition(".")
        if dot:
            known = self._by_symbol.get(stem)
            if known is not None and known.asset_class == "equity":
                return known
        return None

    def classify(self, inst: Instrument, regime: str) -> str | None:
        """The instrument's leverage class under ``regime`` (``esma`` or ``nfa``); ``None`` = out of scope."""
        spec = self._data.regimes.get(regime)
        if spec is None:
            raise EvaluationError(f"unknown regime {regime!r}", field="regime")
        majors = spec.major_currencies
        if regime == "nfa":
            if inst.asset_class != "fx":
                return None  # NFA/CFTC retail forex caps cover currency pairs only
            both = inst.base in majors and inst.quote in majors
            return "nfa_major" if both else "nfa_other"
        if inst.asset_class == "fx":
            return "major_fx" if inst.base in majors and inst.quote in majors else "non_major_fx"
        if inst.asset_class == "metal":
            return "gold" if inst.metal == "gold" else "commodity"
        if inst.asset_class == "index":
            return "major_index" if inst.index in spec.major_indices else "non_major_index"
        return inst.asset_class  # commodity, equity, crypto

    def regimes(self) -> list[str]:
        """Names of the regimes with classification data."""
        return sorted(self._data.regimes)


@cache
def default_catalog() -> InstrumentCatalog:
    """The catalog shipped in the package (cached)."""
    text = resources.files("signalos_core.compliance").joinpath("_data/instruments.yaml").read_text("utf-8")
    return InstrumentCatalog.from_yaml(text)
