"""Keyword packs and the symbol table, loaded from the data files shipped in ``_data/``.

A :class:`Lexicon` maps words and multi-word phrases (any language) to *concepts* (``buy``, ``sl``,
``close``...) and resolves instrument names to canonical symbols. Everything here is data-driven: channel
templates build a derived lexicon with extra aliases and keywords (:meth:`Lexicon.extended`), no code change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml

from signalos_core._errors import ParseError

__all__ = ["LANGUAGES", "Lexicon", "SymbolInfo", "default_lexicon", "normalise_key"]

LANGUAGES = ("en", "es", "pt", "ru", "fa", "de")

_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY_DROP = str.maketrans("", "", "./")
_SPLIT = re.compile(r"[\s\-&]+")
_INFO_CACHE_MAX = 10_000


def normalise_key(word: str) -> str:
    """Lower-case a word and drop the dots and slashes that channels sprinkle into labels (``T.P``, ``S/L``)."""
    return word.lower().translate(_KEY_DROP)


# One multi-word phrase as the tokenizer merges it: words after the second, merged token text, concepts, symbol.
PhraseEntry = tuple[tuple[str, ...], str, frozenset[str], str | None]


class SymbolInfo:
    """What the sanity layer knows about one canonical symbol: price band and pip size (either may be unknown)."""

    __slots__ = ("band", "pip")

    def __init__(self, band: tuple[Decimal, Decimal] | None, pip: Decimal | None) -> None:
        self.band = band
        self.pip = pip


def _read_yaml(name: str) -> Any:
    text = resources.files("signalos_core.parsing").joinpath("_data", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - SafeLoader/CSafeLoader only, never the full loader


def _band(value: Any) -> tuple[Decimal, Decimal] | None:
    if value is None:
        return None
    low, high = value
    return (Decimal(str(low)), Decimal(str(high)))


class Lexicon:
    """Concept and symbol lookup tables; immutable once built (derive with :meth:`extended`)."""

    def __init__(
        self,
        concepts: Mapping[str, Iterable[str]],
        symbol_data: Mapping[str, Any],
    ) -> None:
        self._concept_lists: dict[str, list[str]] = {k: list(v) for k, v in concepts.items()}
        self._symbol_data = symbol_data
        words: dict[str, set[str]] = {}
        phrases: dict[tuple[str, ...], set[str]] = {}
        for concept, entries in self._concept_lists.items():
            for entry in entries:
                self._add(words, phrases, entry, concept)
        aliases: dict[str, str] = {}
        self.info: dict[str, SymbolInfo] = {}
        for name, spec in symbol_data["symbols"].items():
            canonical = str(name).upper()
            self.info[canonical] = SymbolInfo(_band(spec.get("band")), _dec(spec.get("pip")))
            for alias in [canonical, *spec.get("aliases", [])]:
                parts = tuple(normalise_key(p) for p in _SPLIT.split(str(alias).strip()) if p)
                if len(parts) == 1:
                    aliases[parts[0]] = canonical
                else:
                    phrases.setdefault(parts, set()).add("sym:" + canonical)
        for canonical, alias in symbol_data.get("extra_aliases") or ():
            self._alias(aliases, phrases, str(alias), str(canonical).upper())
        self.aliases = aliases
        self.words: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in words.items()}
        by_first: dict[str, list[tuple[tuple[str, ...], frozenset[str]]]] = {}
        for parts, found in phrases.items():
            by_first.setdefault(parts[0], []).append((parts, frozenset(found)))
        for lst in by_first.values():
            lst.sort(key=lambda item: -len(item[0]))
        self.phrases = by_first
        # The tokenizer's view of the same phrases: first word -> second word -> (remaining words, merged
        # text, concepts, symbol), longest first. Keying on the second word too means a phrase start costs
        # one lookup instead of a walk over every phrase sharing its first word ("stop", "take", "buy"...).
        index: dict[str, dict[str, list[PhraseEntry]]] = {}
        for first, lst in by_first.items():
            seconds = index.setdefault(first, {})
            for parts, tagged in lst:
                syms = [c[4:] for c in tagged if c.startswith("sym:")]
                plain = frozenset(c for c in tagged if not c.startswith("sym:"))
                seconds.setdefault(parts[1], []).append((parts[2:], " ".join(parts), plain, syms[0] if syms else None))
        self.phrase_index = index
        self.currencies = frozenset(c.lower() for c in symbol_data["currencies"])
        self.fx_bands = {k.upper(): _band(v) for k, v in symbol_data["fx_bands"].items()}
        self.jpy_band = _band(symbol_data["jpy_quote_band"])
        self.fx_pip = Decimal(str(symbol_data["fx_pip"]))
        self.jpy_pip = Decimal(str(symbol_data["jpy_pip"]))
        self.suffixes = tuple(sorted((s.lower() for s in symbol_data["broker_suffixes"]), key=len, reverse=True))
        crypto = symbol_data["crypto"]
        self.crypto_quotes = tuple(sorted((q.lower() for q in crypto["quotes"]), key=len, reverse=True))
        self.crypto_bases = frozenset(b.lower() for b in crypto["bases"])
        self.default_quote = str(crypto["default_quote"]).upper()
        self.sats_quote = str(crypto["sats_quote"]).upper()
        self.hashtag_stopwords = frozenset(w.lower() for w in symbol_data["hashtag_stopwords"])
        # Caches of pure lookups (words repeat across messages): word -> (symbol, typo?), and the
        # tokenizer's chunk (text between spaces) -> token templates and digit run -> (value, decimals, flag, class).
        self._symbol_cache: dict[str, tuple[str | None, bool]] = {}
        self.chunk_cache: dict[str, Any] = {}
        self.number_cache: dict[str, Any] = {}
        self._info_cache: dict[str, SymbolInfo] = {}  # FX pairs and symbols not in the table

    @staticmethod
    def _add(words: dict[str, set[str]], phrases: dict[tuple[str, ...], set[str]], entry: str, concept: str) -> None:
        parts = tuple(normalise_key(p) for p in _SPLIT.split(str(entry).strip()) if p)
        if not parts:
            return
        if len(parts) == 1:
            words.setdefault(parts[0], set()).add(concept)
        else:
            phrases.setdefault(parts, set()).add(concept)

    @staticmethod
    def _alias(aliases: dict[str, str], phrases: dict[tuple[str, ...], set[str]], alias: str, canonical: str) -> None:
        parts = tuple(normalise_key(p) for p in _SPLIT.split(alias.strip()) if p)
        if len(parts) == 1:
            aliases[parts[0]] = canonical
        elif parts:
            phrases.setdefault(parts, set()).add("sym:" + canonical)

    @property
    def concepts(self) -> tuple[str, ...]:
        """Names of the concepts keyword packs and templates may list words for."""
        return tuple(sorted(self._concept_lists))

    def extended(
        self,
        *,
        keywords: Mapping[str, Iterable[str]] | None = None,
        aliases: Mapping[str, Iterable[str]] | None = None,
        suffixes: Iterable[str] = (),
    ) -> Lexicon:
        """Return a new lexicon with extra concept keywords, symbol aliases and broker suffixes."""
        concepts = {k: list(v) for k, v in self._concept_lists.items()}
        for concept, entries in (keywords or {}).items():
            concepts.setdefault(concept, []).extend(entries)
        data = dict(self._symbol_data)
        extra = [(canonical, alias) for canonical, lst in (aliases or {}).items() for alias in lst]
        data["extra_aliases"] = [*(data.get("extra_aliases") or []), *extra]
        data["broker_suffixes"] = [*data["broker_suffixes"], *suffixes]
        return Lexicon(concepts, data)

    # ------------------------------------------------------------------ symbols
    def resolve_symbol(self, word: str) -> tuple[str | None, bool]:
        """Canonical symbol for one word (``xauusdm``, ``eur/nzd``, ``btc/usdt``) and whether it was a typo."""
        cached = self._symbol_cache.get(word)
        if cached is not None:
            return cached
        result = self._resolve(normalise_key(word))
        if len(self._symbol_cache) < 50_000:
            self._symbol_cache[word] = result
        return result

    def _resolve(self, key: str) -> tuple[str | None, bool]:
        if not key.isalnum() or len(key) < 2:
            return (None, False)
        found = self._plain(key)
        if found:
            return (found, False)
        for suffix in self.suffixes:
            if len(key) > len(suffix) + 2 and key.endswith(suffix):
                found = self._plain(key[: -len(suffix)])
                if found:
                    return (found, False)
        if len(key) == 6 and key.isalpha() and key not in self.words:
            for i in range(5):
                swapped = key[:i] + key[i + 1] + key[i] + key[i + 2 :]
                found = self._plain(swapped)
                if found and swapped != key:
                    return (found, True)
        return (None, False)

    def _plain(self, key: str) -> str | None:
        alias = self.aliases.get(key)
        if alias:
            return alias
        if len(key) == 6 and key[:3] in self.currencies and key[3:] in self.currencies and key[:3] != key[3:]:
            return key.upper()
        for quote in self.crypto_quotes:
            if key.endswith(quote) and key[: -len(quote)] in self.crypto_bases:
                return key.upper()
        return None

    def pair(self, base: str, quote: str) -> str | None:
        """Symbol for a pair written in two words (``EUR/ NZD``, ``BTC / USDT``), or ``None``."""
        b, q = normalise_key(base), normalise_key(quote)
        if b in self.currencies and q in self.currencies and b != q:
            return (b + q).upper()
        if q in self.crypto_quotes and (b in self.crypto_bases or (b.isalpha() and 2 <= len(b) <= 10)):
            return (b + q).upper()
        return None

    def coin(self, word: str, *, sats: bool) -> str | None:
        """Symbol for a bare cashtag coin (``#MFT``): BASE + default quote, or BASE + BTC when priced in sats."""
        key = normalise_key(word)
        if not key.isalpha() or not 2 <= len(key) <= 10 or key in self.hashtag_stopwords or key in self.words:
            return None
        return key.upper() + (self.sats_quote if sats else self.default_quote)

    def symbol_info(self, symbol: str) -> SymbolInfo:
        """Band and pip size for a canonical symbol; FX pairs not listed get the JPY or generic defaults."""
        info = self.info.get(symbol)
        if info is not None:
            return info
        info = self._info_cache.get(symbol)
        if info is None:
            info = self._derived_info(symbol)
            if len(self._info_cache) < _INFO_CACHE_MAX:  # symbols come from the text: keep the cache bounded
                self._info_cache[symbol] = info
        return info

    def _derived_info(self, symbol: str) -> SymbolInfo:
        if len(symbol) == 6 and symbol[:3].lower() in self.currencies and symbol[3:].lower() in self.currencies:
            jpy = symbol.endswith("JPY")
            band = self.fx_bands.get(symbol) or (self.jpy_band if jpy else None)
            return SymbolInfo(band, self.jpy_pip if jpy else self.fx_pip)
        return SymbolInfo(None, None)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _merge_packs(languages: Iterable[str]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for lang in languages:
        data = _read_yaml(f"lang/{lang}.yaml")
        if not isinstance(data, dict) or not isinstance(data.get("concepts"), dict):
            raise ParseError(f"keyword pack {lang}.yaml: 'concepts' must be a mapping")
        for concept, entries in data["concepts"].items():
            merged.setdefault(str(concept), []).extend(str(e) for e in entries)
    return merged


@functools.cache
def default_lexicon() -> Lexicon:
    """The built-in lexicon: every language pack plus the shipped symbol table (built once, then shared)."""
    return Lexicon(_merge_packs(LANGUAGES), _read_yaml("symbols.yaml"))
