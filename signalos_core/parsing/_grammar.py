"""Structural field binding for new orders: labels bind to the numbers that follow them.

The extractor walks the classified tokens once. Labels (words, phrases, emoji) open a slot (entry, SL, TP);
the next price-class number binds to it, on the same line or on the following lines; separators decide
between a zone (``a - b``, ``a/b``, ``a_b``, ``from a to b``), a ladder (``a & b``) and a TP list. Unlabelled
prices after the side word or symbol are the entry. A new side word or symbol after a complete order starts
another order (multi-order messages). Nothing here checks plausibility; that is ``_sanity``'s job.
"""

from __future__ import annotations

from decimal import Decimal

from signalos_core.parsing._draft import Draft, modal_decimals, recover, share_levels
from signalos_core.parsing._lexicon import Lexicon
from signalos_core.parsing._model import Side
from signalos_core.parsing._tokens import (
    EMO,
    INDEX,
    LEVERAGE,
    LOT,
    NL,
    NUM,
    ORDINAL,
    PERCENT,
    PIPS,
    PRICE,
    SEP,
    WORD,
    Tok,
)
from signalos_core.parsing._view import TokenView

__all__ = ["extract_orders"]

_RANGE_SEPS = frozenset({"-", "/", "_", "~", "to"})
_LIST_SEPS = frozenset({"/", ",", "&", "-", "and", "|", ";", "_"})
_LADDER_SEPS = frozenset({"&", "and", ","})
_SKIPPABLE_SEPS = frozenset({":", "-", ".", "=", "#", "@", "(", ")", "*", ">", "<", "|", "~", "{", "}", "[", "]"})
_LABEL_KINDS = ("sl", "tp", "entry")
_NONE: frozenset[str] = frozenset()
_SEP_ACTIVE = frozenset("([{)]}@=")  # separators _sep acts on even when no label value was bound


class _Extractor(TokenView):
    def __init__(self, toks: list[Tok], text: str, lex: Lexicon, consumed: set[int]) -> None:
        super().__init__(toks, text, consumed)
        self.lex = lex
        self.d = Draft()  # the order being assembled (last of drafts)
        self.drafts: list[Draft] = [self.d]
        self.label: str | None = None
        self.label_index: int | None = None
        self.label_filled = False
        self.label_line = 0
        self.label_gap = 0
        self.label_list = False
        self.join: str | None = None
        self.ordinal: int | None = None
        self.last: tuple[str, int, Tok] | None = None  # slot, line, token of the last bound value
        self.bracket = 0
        self.coin: tuple[str, Tok] | None = None

    def _new_draft(self, *, keep_side: bool = False) -> None:
        old = self.d
        new = Draft()
        new.symbol, new.symbol_tok = old.symbol, old.symbol_tok
        if keep_side:
            new.side, new.side_tok, new.side_word = old.side, old.side_tok, old.side_word
            new.order_type, new.otype_explicit, new.otype_tok = old.order_type, old.otype_explicit, old.otype_tok
        self.drafts.append(new)
        self.d = new
        self.label, self.label_index, self.label_filled, self.label_gap, self.join = None, None, False, 0, None

    def run(self) -> list[Draft]:
        toks = self.toks
        consumed = self.consumed  # the same set the handlers add to
        for i, tok in enumerate(toks):
            if i in consumed:
                continue
            kind = tok.kind
            if kind == NL:
                self._newline(i)
                self.recent1 = self.recent2 = _NONE
                self.line_future = False
            elif kind == WORD:
                c = tok.concepts
                if (
                    c
                    or tok.sym is not None
                    or self.label is not None
                    or (i and toks[i - 1].kind == SEP and toks[i - 1].text in "#$")
                ):
                    self._word(i, tok)
                # else: a plain word with no label open and no cashtag before it, which _word would ignore
                self.recent2 = self.recent1
                self.recent1 = c
                if "future" in c:
                    self.line_future = True
            elif kind == NUM:
                self._number(i, tok)
            elif kind == SEP:
                if self.label_filled or tok.text in _SEP_ACTIVE:  # other separators change nothing
                    self._sep(i, tok)
            elif kind == EMO and tok.concepts:
                nxt = self._next(i)
                if nxt is not None and toks[nxt].kind == NUM and self.line_of[nxt] == self.line_of[i]:
                    self._open_label(next(c for c in tok.concepts if c != "emoji_label"), i, None)
        if self.coin is not None:
            for draft in self.drafts:
                if draft.symbol is None:
                    draft.symbol, draft.symbol_tok = self.coin
        drafts = []
        for d in self.drafts:
            if d.side or d.has_values() or d.symbol:
                drafts.append(d)
        share_levels(drafts)
        return drafts

    # ------------------------------------------------------------------ helpers
    def _open_label(self, label: str, i: int, index: int | None) -> None:
        self.label_list = False
        self.label = label
        self.label_index = index if index is not None else self.ordinal
        self.ordinal = None
        self.label_filled = False
        self.label_gap = 0
        self.label_line = self.line_of[i]
        self.join = None

    # ------------------------------------------------------------------ token handlers
    def _newline(self, i: int) -> None:
        self.join = None
        if self.label is not None and self.label_filled and self.label != "tp" and not self.label_list:
            self.label = None

    def _word(self, i: int, tok: Tok) -> None:  # noqa: PLR0915 - concept dispatch, ordered by precedence
        c = tok.concepts
        d = self.d
        if tok.sym is not None:
            sym = tok.sym
            prev = self.toks[i - 1] if i else None
            if prev is not None and prev.kind == SEP and prev.text in "#$" and tok.text in self.lex.crypto_bases:
                sym = tok.text.upper() + self.lex.default_quote  # "$BTC": a bare cashtag implies the USDT quote
            if d.symbol is not None and sym != d.symbol and d.own_symbol and d.has_values():
                self._new_draft(keep_side=not self._side_ahead_on_line(i))
                d = self.d
            if not d.own_symbol:
                d.symbol, d.symbol_tok, d.own_symbol = sym, tok, True
                if tok.typo:
                    d.flags.add("symbol_typo")
            if self.label_filled:
                self.label = None
            return
        if not c:
            prev = self.toks[i - 1] if i else None
            if (
                prev is not None
                and prev.kind == SEP
                and prev.text in "#$"
                and prev.end == tok.start
                and self.coin is None
                and self.text[tok.start : tok.end].isupper()
            ):
                coin = self.lex.coin(tok.text, sats=False)
                if coin is not None:
                    self.coin = (coin, tok)
            self._filler(i)
            return
        if "horizon" in c:
            return
        side: Side | None = "buy" if "buy" in c else "sell" if "sell" in c else None
        if side is not None:
            self._side(i, tok, side)
            return
        if "limit" in c:
            if d.order_type != "stop" or not d.otype_explicit:
                d.order_type, d.otype_explicit, d.otype_tok = "limit", True, tok
            return
        if "stop_word" in c and not ({"sl"} & c and " " in tok.text):
            if self._after_side(i):
                d.order_type, d.otype_explicit, d.otype_tok = "stop", True, tok
                return
            self._open_label("sl", i, tok.index)
            return
        if "market" in c and self.bracket == 0:
            if d.order_type is None:
                d.order_type, d.otype_explicit, d.otype_tok = "market", True, tok
            if "entry" not in c:
                return
        if "sl" in c:
            self._open_label("sl", i, tok.index)
            return
        if "tp" in c or ("tp_glued" in c and tok.index is not None):
            self._open_label("tp", i, tok.index)
            return
        if "open_slot" in c and self.label in ("tp", "sl") and not self.label_filled:
            if self.label == "tp":
                d.tp_open = True
            else:
                d.sl_open = True
            self.label = None
            return
        if "near" in c and (not d.entry_vals):
            if not d.otype_explicit:
                d.order_type = "limit"
                d.otype_tok = tok
            self._open_label("entry", i, None)
            return
        if "entry" in c:
            if not d.entry_vals or (self.label == "entry" and not self.label_filled):
                self._open_label("entry", i, None)
            elif self.label_filled:
                self.label = None
            return
        if "range_to" in c and self.label_filled:
            self.join = "to"
            return
        if "and" in c and self.label_filled:
            self.join = "and"
            return
        self._filler(i)

    def _filler(self, i: int) -> None:
        if self.label is None:
            return
        if self.label_filled or self.line_of[i] != self.label_line:
            # a word line after an unfilled label: the value is not on the next line after all
            self.label = None
            return
        self.label_gap += 1
        if self.label_gap > 3:
            self.label = None

    def _side(self, i: int, tok: Tok, side: Side) -> None:
        d = self.d
        negated, future = self._before_on_line(i)
        if negated:
            return  # "don't buy gold now": not a side
        if future:
            d.flags.add("intention")  # "if gold breaks 2350 we will buy": a plan, not an order
        if self._hedged_line(i):
            d.flags.add("hedged")  # "gold may sell off to 2300": a forecast unless levels follow
        if d.side is not None and d.side_word:
            if d.has_levels() and (self._price_ahead_on_line(i) or side != d.side):
                self._new_draft()
                d = self.d
            elif side != d.side and d.entry_vals and self._colon_next(i):
                self._open_label("tp", i, None)  # spot posts: "Buy: 0.012 ... Sell: 0.014 - 0.015" are targets
                return
            elif side != d.side:
                d.flags.add("side_conflict")
                return
            else:
                d.sentiment_only = d.sentiment_only and "sentiment" in tok.concepts
                if not d.has_levels():
                    # the same side again before any SL/TP: another entry of a ladder
                    self._open_label("entry", i, None)
                return
        d.side, d.side_tok, d.side_word = side, tok, True
        d.sentiment_only = "sentiment" in tok.concepts
        if self.label_filled:
            self.label = None

    def _sep(self, i: int, tok: Tok) -> None:
        t = tok.text
        if t in "([{":
            self.bracket += t == "["
            return
        if t in ")]}":
            self.bracket = max(0, self.bracket - (t == "]"))
            return
        if t == "@":
            if (self.label is None and not self.d.entry_vals) or self.label_filled:
                self._open_label("entry", i, None)
            return
        if t == "=" and i and self.toks[i - 1].kind == WORD and self.toks[i - 1].text in ("q", "qty", "quantity"):
            end = tok.end
            while end < len(self.text) and not self.text[end].isspace():
                end += 1
            self.d.quantity = self.text[tok.end : end]
            return
        if self.label_filled and t in _LIST_SEPS:
            self.join = t

    def _number(self, i: int, tok: Tok) -> None:
        d = self.d
        cls = tok.ncls
        if cls != PRICE:  # prices are the common case: one test for them
            self._not_price(i, tok, cls)
            return
        value = tok.value
        if value is None:
            if tok.nflag != "corrupted_number":
                return
            value = recover(tok, modal_decimals(self.toks))
            if value is None:
                return
            d.flags.add("corrupted_number")
        if tok.nflag == "sats":
            d.price_unit = "satoshi"
            if self.coin is not None:
                self.coin = (self.lex.coin(self.coin[1].text, sats=True) or self.coin[0], self.coin[1])
        elif tok.nflag == "comma_decimal":
            d.flags.add("comma_decimal")
        start = tok.start
        if start and self.text[start - 1] == "." and self._split_decimal(i, tok):
            return
        label = self.label
        line = self.line_of[i]
        if label == "tp" and not self.label_filled and self.label_index is None and self._is_index(i, tok):
            self.label_index = int(value)
            return
        if label == "sl" and not self.label_filled and self._space_decimal(i, tok, value):
            return
        if label is not None and (
            not self.label_filled
            or self.join is not None
            or (label == "tp" and self._bare(line) and line != self.label_line)
            or (label == "tp" and self._follows_tp(i))
        ):
            if not self.label_filled and line != self.label_line:
                self.label_list = True  # "Entry Targets:" then one value per line (Cornix-style lists)
            self._bind(label, value, tok, i)
            return
        if label == "entry" and self.label_list and self._bare(line) and line != self.label_line:
            self._bind_entry(value, tok, "and", line)
            return
        # unlabelled numbers
        prev = self._prev_sig(i)
        if (
            prev is not None
            and prev.kind == SEP
            and prev.text in "-/"
            and self.last is not None
            and self.last[0] == "entry"
            and self.last[1] == line - 1
            and len(d.entry_vals) == 1
            and prev.start > self.text.rfind("\n", 0, tok.start)
        ):
            self._bind_entry(value, tok, "-", line)
            return
        header = prev is not None and (prev is d.side_tok or prev is d.symbol_tok or prev is d.otype_tok)
        if (d.side_word or d.own_symbol) and not d.entry_vals and (not d.has_levels() or header):
            self._open_label("entry", i, None)
            self._bind("entry", value, tok, i)

    def _not_price(self, i: int, tok: Tok, cls: int) -> None:
        d = self.d
        if cls in (ORDINAL, INDEX):
            if cls == ORDINAL and tok.value is not None:
                self.ordinal = int(tok.value)
        elif cls == PIPS:
            self._pips(i, tok)
        elif cls == LOT:
            if d.lot is None:
                d.lot = tok.value
        elif cls == LEVERAGE:
            if d.leverage is None:
                d.leverage = tok.value
        elif cls == PERCENT:
            if self.label == "sl" and not self.label_filled:
                d.flags.add("sl_percent")  # a stop given as a % of the account: no price level
                self.label = None
            elif self._near_word(i, "risk") and d.risk is None:
                d.risk = tok.value

    def _follows_tp(self, i: int) -> bool:
        """``targets 3200 3300 3400``: a price right after a TP value on the same line continues the list."""
        prev = self.toks[i - 1] if i else None
        last = self.last
        return prev is not None and prev.kind == NUM and last is not None and last[2] is prev and last[0] == "tp"

    def _is_index(self, i: int, tok: Tok) -> bool:
        """``TP 1 151.01``, ``T.P 1`` + value on the next line, ``TP 3 - Close All``: a small integer index."""
        value = tok.value
        if value is None or tok.decimals or value > 20 or (tok.end < len(self.text) and self.text[tok.end] == "."):
            return False
        nxt = None
        for j in range(i + 1, len(self.toks)):
            if j not in self.consumed and self.toks[j].kind not in (SEP, NL, EMO):
                nxt = j
                break
        if nxt is None:
            return False
        follower = self.toks[nxt]
        if follower.kind == NUM:
            return follower.ncls in (PRICE, PIPS)
        if self.d.symbol:
            band = self.lex.symbol_info(self.d.symbol).band
            if band is not None and band[0] <= value <= band[1]:
                return False
        return self.line_of[nxt] == self.line_of[i]

    def _space_decimal(self, i: int, tok: Tok, value: Decimal) -> bool:
        """``Sl 1 7786``: a decimal point typed as a space; accepted only if it fits the other prices."""
        j = i + 1
        if j >= len(self.toks) or tok.decimals or len(tok.raw) > 2:
            return False
        nxt = self.toks[j]
        if nxt.kind != NUM or nxt.start != tok.end + 1 or len(nxt.raw) < 3 or nxt.ncls != PRICE:
            return False
        if not (tok.raw.isdigit() and nxt.raw.isdigit()):
            return False
        joined = Decimal(f"{tok.raw}.{nxt.raw}")
        refs = [v for v, _ in self.d.entry_vals] + [v for v, _ in self.d.tp]
        if not refs or not all(abs(joined - r) <= r * Decimal("0.2") for r in refs):
            return False
        self.d.flags.add("space_as_decimal")
        self._bind("sl", joined, tok, i)
        self.consumed.add(j)
        return True

    def _split_decimal(self, i: int, tok: Tok) -> bool:
        """``@2312`` / ``.5 - 2308.5``: a decimal split across lines joins the previous line's integer."""
        start = tok.start
        if start == 0 or self.text[start - 1] != "." or self.last is None:
            return False
        line_start = self.text.rfind("\n", 0, start - 1) + 1
        if self.text[line_start : start - 1].strip():
            return False
        slot, line, prev = self.last
        if line != self.line_of[i] - 1 or not (prev.raw.isdigit() and tok.raw.isdigit()):
            return False
        joined = Decimal(f"{prev.raw}.{tok.raw}")
        d = self.d
        values = {"entry": d.entry_vals, "tp": d.tp}.get(slot)
        if values:
            values[-1] = (joined, prev)
        elif slot == "sl" and d.sl is not None:
            d.sl = (joined, prev)
        d.flags.add("linebreak_in_number")
        self.last = (slot, self.line_of[i], prev)
        self.label, self.label_filled, self.label_line, self.join = slot, True, self.line_of[i], None
        return True

    def _bind(self, label: str, value: Decimal, tok: Tok, i: int) -> None:
        d = self.d
        line = self.line_of[i]
        join = self.join
        if label == "entry":
            self._bind_entry(value, tok, join if self.label_filled else None, line)
        elif label == "sl":
            if d.sl is None:
                d.sl = (value, tok)
            else:
                return
        elif label == "tp":
            if self.label_filled and d.tp:
                first, first_tok = d.tp[0]
                shorthand = tok.raw.isdigit() and len(tok.raw) < len(first_tok.raw.split(".")[0])
                if first and abs(value - first) > first * Decimal("0.5") and not shorthand:
                    return
            d.tp.append((value, tok))
        self.label_filled = True
        self.join = None
        self.last = (label, line, tok)

    def _bind_entry(self, value: Decimal, tok: Tok, join: str | None, line: int) -> None:
        d = self.d
        if d.entry_vals and join is None and not self.label_filled:
            # a second entry label: a ladder (1st buy limit @ a, 2nd buy limit @ b)
            d.entry_join = "ladder"
        elif d.entry_vals and join is not None:
            if join in _LADDER_SEPS:
                d.entry_join = "ladder"
            elif d.entry_join is None:
                d.entry_join = "zone"
            else:
                d.entry_join = "ladder"
        elif d.entry_vals:
            return
        d.entry_vals.append((value, tok))
        self.label_filled = True
        self.join = None
        self.last = ("entry", line, tok)

    def _pips(self, i: int, tok: Tok) -> None:
        d = self.d
        value = tok.value
        if value is None:
            return
        if self.label in ("sl", "tp") and not self.label_filled and self.line_of[i] == self.label_line:
            if self.label == "sl":
                d.sl_pips = (value, tok)
            else:
                d.tp_pips.append((value, tok))
            self.label_filled = True
            return
        if self.last is not None and self.last[1] == self.line_of[i] and self.last[0] in ("sl", "tp"):
            slot, _, price_tok = self.last
            if price_tok.value is not None:
                d.pip_notes.append((slot, price_tok.value, value))


def extract_orders(toks: list[Tok], text: str, lex: Lexicon, consumed: set[int]) -> list[Draft]:
    """Bind labels to values; one :class:`Draft` per order found (possibly none)."""
    return _Extractor(toks, text, lex, consumed).run()
