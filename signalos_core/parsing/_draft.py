"""The order being assembled (:class:`Draft`) and the per-message helpers of the new-order grammar."""

from __future__ import annotations

from decimal import Decimal

from signalos_core.parsing._model import Side
from signalos_core.parsing._tokens import NUM, PRICE, WORD, Tok

__all__ = ["Draft", "line_info", "modal_decimals", "recover", "share_levels"]


class Draft:
    """A new order being assembled; values keep their tokens for spans."""

    __slots__ = (
        "entry_join",
        "entry_vals",
        "flags",
        "leverage",
        "lot",
        "order_type",
        "otype_explicit",
        "otype_tok",
        "own_symbol",
        "pip_notes",
        "price_unit",
        "quantity",
        "risk",
        "sentiment_only",
        "side",
        "side_tok",
        "side_word",
        "sl",
        "sl_open",
        "sl_pips",
        "symbol",
        "symbol_tok",
        "tp",
        "tp_open",
        "tp_pips",
    )

    def __init__(self) -> None:
        self.symbol: str | None = None
        self.symbol_tok: Tok | None = None
        self.own_symbol = False
        self.side: Side | None = None
        self.side_tok: Tok | None = None
        self.side_word = False
        self.sentiment_only = False
        self.order_type: str | None = None
        self.otype_explicit = False
        self.otype_tok: Tok | None = None
        self.entry_vals: list[tuple[Decimal, Tok]] = []
        self.entry_join: str | None = None
        self.sl: tuple[Decimal, Tok] | None = None
        self.sl_open = False
        self.sl_pips: tuple[Decimal, Tok] | None = None
        self.tp: list[tuple[Decimal, Tok]] = []
        self.tp_open = False
        self.tp_pips: list[tuple[Decimal, Tok]] = []
        self.flags: set[str] = set()
        self.pip_notes: list[tuple[str, Decimal, Decimal]] = []
        self.price_unit: str | None = None
        self.lot: Decimal | None = None
        self.risk: Decimal | None = None
        self.leverage: Decimal | None = None
        self.quantity: str | None = None

    def has_levels(self) -> bool:
        """True once an SL or TP (price, pips or open slot) was bound."""
        return bool(self.sl or self.tp or self.sl_pips or self.tp_pips or self.tp_open)

    def has_values(self) -> bool:
        """True once any price was bound."""
        return bool(self.entry_vals or self.sl or self.tp)


def line_info(toks: list[Tok]) -> list[bool]:
    """Per line: whether it holds only numbers/punctuation/emoji (a price and no word other than "and")."""
    words: set[int] = set()  # lines with a word other than "and"
    nums: set[int] = set()  # lines with a price-class number
    for tok in toks:
        kind = tok.kind
        if kind == WORD:  # the commonest kind first
            if "and" not in tok.concepts:
                words.add(tok.line)
        elif kind == NUM and tok.ncls == PRICE:
            nums.add(tok.line)
    bare = [False] * (toks[-1].line + 1 if toks else 1)
    for k in nums - words:
        bare[k] = True
    return bare


def modal_decimals(toks: list[Tok]) -> int:
    counts: dict[int, int] = {}
    for tok in toks:
        if tok.kind == NUM and tok.ncls == PRICE and tok.value is not None and tok.decimals:
            counts[tok.decimals] = counts.get(tok.decimals, 0) + 1
    return max(counts, key=lambda d: counts[d]) if counts else 2


def recover(tok: Tok, decimals: int) -> Decimal | None:
    """Value of a number with glued garbage (``2368.502302.72``): integer part plus the usual decimals."""
    head, _, rest = tok.raw.partition(".")
    if not head.isdigit() or not rest[:1].isdigit():
        return None  # "12,500.5.3" or ",5": not a price with garbage glued on, leave it unbound
    frac = ""
    for ch in rest[:decimals]:
        if not ch.isdigit():
            break
        frac += ch
    return Decimal(f"{head}.{frac}")


def share_levels(drafts: list[Draft]) -> None:
    """``Buy EURUSD 1.08 and GBPUSD 1.27 / SL 30 pips TP 60 pips``: trailing levels apply to every order
    that states none; pip distances are shared across symbols, prices only within the same symbol."""
    for k, draft in enumerate(drafts):
        if draft.has_levels():
            continue
        donor = next((later for later in drafts[k + 1 :] if later.has_levels()), None)
        if donor is None:
            continue
        draft.sl_pips, draft.tp_pips = donor.sl_pips, list(donor.tp_pips)
        if donor.symbol == draft.symbol:
            draft.sl, draft.tp, draft.sl_open, draft.tp_open = donor.sl, list(donor.tp), donor.sl_open, donor.tp_open
