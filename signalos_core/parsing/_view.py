"""Read-only look-around over one message's tokens, shared by the new-order grammar.

Every look-ahead is precomputed once per message (on first use) so that rules asking "is there a price
later on this line?" stay linear in the message length, whatever the input.
"""

from __future__ import annotations

import operator

from signalos_core.parsing._draft import line_info
from signalos_core.parsing._tokens import EMO, NL, NUM, PRICE, SEP, WORD, Tok

__all__ = ["TokenView"]

_LINE = operator.attrgetter("line")


class TokenView:
    """Tokens, original text and line structure of one message, plus look-around helpers."""

    def __init__(self, toks: list[Tok], text: str, consumed: set[int]) -> None:
        self.toks = toks
        self.text = text
        self.consumed = consumed
        self.line_of: list[int] = list(map(_LINE, toks))
        self.bare_lines: list[bool] | None = None
        # concepts of the last two words on the current line (empty when there are fewer)
        self.recent1: frozenset[str] = frozenset()
        self.recent2: frozenset[str] = frozenset()
        self.line_future = False  # a future/condition word seen earlier on the current line
        self.hedge_lines: set[int] | None = None
        self.ahead: tuple[list[int], list[int], list[int]] | None = None

    def _bare(self, line: int) -> bool:
        """Whether ``line`` holds only numbers/punctuation/emoji (computed once, on first use)."""
        if self.bare_lines is None:
            self.bare_lines = line_info(self.toks)
        return self.bare_lines[line]

    def _next(self, i: int) -> int | None:
        for j in range(i + 1, len(self.toks)):
            if j not in self.consumed and self.toks[j].kind != SEP:
                return j
        return None

    def _hedged_line(self, i: int) -> bool:
        if self.hedge_lines is None:  # computed once per message, only if a side word asks
            self.hedge_lines = {t.line for t in self.toks if "hedge" in t.concepts}
        return self.line_of[i] in self.hedge_lines

    def _colon_next(self, i: int) -> bool:
        return i + 1 < len(self.toks) and self.toks[i + 1].kind == SEP and self.toks[i + 1].text == ":"

    def _before_on_line(self, i: int) -> tuple[bool, bool]:
        """(a negation within two words before token ``i``, a future/condition word earlier on its line).

        Kept up to date by :meth:`run` while it walks the line, so repeated side words stay linear."""
        r1, r2 = self.recent1, self.recent2
        return ("negation" in r1 and "id" not in r1) or ("negation" in r2 and "id" not in r2), self.line_future

    def _ahead(self) -> tuple[list[int], list[int], list[int]]:
        """Per token: index of the next side word, next price and next SL/TP label on the same line (or a
        large number). Built once, on first use, in one backward pass: look-aheads stay linear."""
        if self.ahead is None:
            n = len(self.toks)
            side, price, label = [n] * n, [n] * n, [n] * n
            next_side = next_price = next_label = n
            for j in range(n - 1, -1, -1):
                side[j], price[j], label[j] = next_side, next_price, next_label
                tok = self.toks[j]
                if tok.kind == NL:
                    next_side = next_price = next_label = n
                elif tok.kind == NUM and tok.ncls == PRICE:
                    next_price = j
                elif tok.kind == WORD:
                    if tok.concepts & {"buy", "sell"}:
                        next_side = j
                    if tok.concepts & {"sl", "tp"}:
                        next_label = j
            self.ahead = (side, price, label)
        return self.ahead

    def _side_ahead_on_line(self, i: int) -> bool:
        side, _, _ = self._ahead()
        return side[i] < len(self.toks)

    def _price_ahead_on_line(self, i: int) -> bool:
        _, price, label = self._ahead()
        return price[i] < label[i]

    def _after_side(self, i: int) -> bool:
        for j in range(i - 1, -1, -1):
            prev = self.toks[j]
            if prev.kind == SEP:
                continue
            return prev.kind == WORD and bool(prev.concepts & {"buy", "sell"})
        return False

    def _prev_sig(self, i: int) -> Tok | None:
        for j in range(i - 1, -1, -1):
            if j not in self.consumed and self.toks[j].kind != EMO:
                return self.toks[j]
        return None

    def _near_word(self, i: int, concept: str) -> bool:
        lo, hi = max(0, i - 4), min(len(self.toks), i + 5)
        return any(concept in self.toks[j].concepts for j in range(lo, hi))
