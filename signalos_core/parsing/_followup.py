"""Follow-up grammar: actions on existing trades (move SL, close, partial, cancel, TP/SL hit, reports).

Cues are read per sentence from concepts, never from fixed strings: a move verb (or a "to" preposition)
governing an SL/TP label and a target; a close verb with its scope (all / partial fraction / symbol + side
filter); cancel; a hit word beside a TP/SL label; a signed pip or money amount as a profit report. Tokens
a cue uses are *consumed*, so the new-order grammar does not read ``move SL to 1248`` as a stop-loss.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal

from signalos_core.parsing._model import Action
from signalos_core.parsing._tokens import (
    EMO,
    INDEX,
    MONEY,
    NL,
    NUM,
    ORDINAL,
    PERCENT,
    PIPS,
    PRICE,
    SEP,
    TABLE,
    WORD,
    Tok,
)

__all__ = ["FollowUps", "scan_followups"]

_SENTENCE_END = frozenset({".", "!", "?", ";"})
_ARTICLE_MAX = 4
_STRONG_BE = frozenset(
    {
        "breakeven",
        "break even",
        "risk free",
        "riskfree",
        "sin riesgo",
        "libre de riesgo",
        "безубыток",
        "ریسک فری",
        "سر به سر",
        "einstand",
        "zero a zero",
        "sem risco",
        "бу",
        "б/у",
    }
)


class FollowUps:
    """Result of the follow-up scan: actions in written order (with spans), consumed tokens and cues seen."""

    __slots__ = (
        "actions",
        "advice",
        "advice_at",
        "conditional",
        "consumed",
        "defer",
        "hedge",
        "image",
        "option",
        "present",
        "update",
        "verb_cue",
    )

    def __init__(self) -> None:
        self.actions: list[tuple[Action, int, int]] = []
        self.consumed: set[int] = set()
        self.update = False
        self.defer = False
        self.advice = False
        self.advice_at: list[int] = []  # offsets of advice words ("you can", "os recomiendo")
        self.hedge = False
        self.verb_cue = False
        self.conditional = False
        self.image = False  # "levels in the chart": the numbers are in a picture we cannot see
        self.option = False  # options wording (strike, premium): out of scope for the copier
        self.present: frozenset[str] = frozenset()  # every concept of the message's tokens


def _sentences(toks: list[Tok]) -> list[list[int]]:
    out: list[list[int]] = []
    current: list[int] = []
    for i, tok in enumerate(toks):
        if tok.kind == NL or (tok.kind == SEP and tok.text in _SENTENCE_END):
            if current:
                out.append(current)
                current = []
            continue
        current.append(i)
    if current:
        out.append(current)
    return out


class _Scanner:
    def __init__(self, toks: list[Tok], text: str, has_reply: bool) -> None:
        self.toks = toks
        self.text = text
        self.has_reply = has_reply
        self.out = FollowUps()
        self.cues = 0
        self.present: frozenset[str] = frozenset()

    def add(self, action: Action, *indices: int) -> None:
        if any(action == known for known, _, _ in self.out.actions):
            self.out.consumed.update(i for i in indices if i >= 0)
            return  # "Saltó el stop": the same report read twice (verb and label)
        spans = [self.toks[i] for i in indices if i >= 0]
        start = min(t.start for t in spans)
        end = max(t.end for t in spans)
        self.out.actions.append((action, start, end))
        self.out.consumed.update(i for i in indices if i >= 0)

    def run(self) -> FollowUps:
        toks = self.toks
        present: frozenset[str] = _EMPTY.union(*map(_CONCEPTS, toks))  # one C-level union, no Python loop
        out = self.out
        out.present = present
        self.present = present
        out.update, out.defer, out.advice = "update" in present, "defer" in present, "advice" in present
        if out.advice:
            out.advice_at = [t.start for t in self.toks if "advice" in t.concepts]
        out.hedge, out.conditional = "hedge" in present, "conditional" in present
        out.image, out.option = "image" in present, "option" in present
        if (
            not _TRIGGERS.isdisjoint(present)
            or (
                # an arrow (SL → 2340) or a check mark (TP2 ✅) can carry a cue without a word
                _ARROWISH.search(self.text)
                and any(
                    (tok.kind == SEP and tok.text == ">") or (tok.kind == EMO and tok.text[0] in _TICKS) for tok in toks
                )
            )
            or ("to" in present and _label_then_to(toks))
        ):
            for sentence in _sentences(toks):
                self._sentence(sentence)
        if not self.out.actions:
            self._bare_label()
        if not self.out.actions:
            self._reports()
        return self.out

    def _bare_label(self) -> None:
        """A message that is only ``SL`` (or ``TP2``), perhaps with an emoji: that level was hit."""
        word = -1
        for i, t in enumerate(self.toks):
            if t.kind == WORD:
                if word >= 0:
                    return  # a second word: not a bare label (most messages stop here)
                word = i
            elif t.kind == NUM and t.ncls == PRICE and not (t.value is not None and t.value <= 20):
                return
        if word < 0:
            return
        tok = self.toks[word]
        if "sl" in tok.concepts or ("stop_word" in tok.concepts and "emoji_label" not in tok.concepts):
            self.add(Action(action="sl_hit"), word)
        elif "tp" in tok.concepts or ("tp_glued" in tok.concepts and tok.index is not None):
            index = tok.index
            small = [t for t in self.toks if t.kind == NUM and t.value is not None and not t.decimals]
            if index is None and len(small) == 1 and small[0].value is not None:
                index = int(small[0].value)
            self.add(Action(action="tp_hit", tp_index=index), word)

    # ---------------------------------------------------------------- per sentence
    def _sentence(self, idx: list[int]) -> None:
        toks = self.toks
        present = self.present  # a concept absent from the message is absent from each sentence
        move_at = (
            next((k for k, i in enumerate(idx) if "move" in toks[i].concepts), None) if "move" in present else None
        )
        hit_at = (
            next((k for k, i in enumerate(idx) if toks[i].concepts & _HIT), None)
            if not _HIT.isdisjoint(present)
            else None
        )
        if hit_at is not None and self._negated(idx, hit_at):
            hit_at = None  # "price almost tagged my stop", "no tocó el TP": not a hit
        hit_label = self._hit_label(idx, hit_at) if hit_at is not None else None
        consumed = self.out.consumed  # the set the rules add to
        for k, i in enumerate(idx):
            tok = toks[i]
            c = tok.concepts
            if not c or tok.kind != WORD or i in consumed:  # cheapest test first: most tokens have no concept
                continue
            self.cues += 1
            if self.cues > _MAX_CUES:
                return  # no real message carries this many instructions; keeps hostile input linear
            if c.isdisjoint(_CUES):
                continue  # every rule below needs one of these concepts ("buy", "gold"... skip them all)
            hit = hit_at if k == hit_label else None
            if ("sl" in c or ("stop_word" in c and not self._after_side(idx, k))) and "emoji_label" not in c:
                self._sl(idx, k, move_at, hit)
            elif "tp" in c or ("tp_glued" in c and tok.index is not None):
                self._tp(idx, k, move_at, hit)
            elif c & {"close", "cancel"} and self._negated(idx, k):
                continue  # "don't close yet", "no cierren": the opposite of an instruction
            elif "entry" in c and move_at is not None and move_at < k and tok.text not in _STRONG_BE:
                self._entry(idx, k, move_at)
            elif "close" in c and not self._slot_value(idx, k):
                self._close(idx, k)
            elif "cancel" in c:
                self._cancel(idx, k)
            elif "stopped" in c:
                self.out.verb_cue = True
                self.add(Action(action="sl_hit"), i)
            elif "half" in c and not any(toks[j].concepts & {"close"} for j in idx) and self._sided(idx):
                self.out.verb_cue = True  # "verkaufe die Hälfte", "sell half": closing part of the position
                self.add(Action(action="close_partial", fraction=Decimal("0.5")), i)
            elif "partial" in c and not any(toks[j].concepts & {"close"} for j in idx):
                self.out.verb_cue = True
                self.add(Action(action="close_partial", fraction=self._fraction(idx)), i)
            elif c & _STRONG_BE_CONCEPT_GUARD and tok.text in _STRONG_BE:
                self.out.verb_cue = True
                self.add(Action(action="move_sl", to="breakeven"), i)
            elif "triggered" in c and not any(toks[j].concepts & {"sl", "tp"} for j in idx):
                self.add(Action(action="entry_triggered"), i)
            elif "hold" in c:
                self.add(Action(action="hold"), i)

    def _hit_label(self, idx: list[int], hit_at: int) -> int | None:
        """The label a hit word reports on: the nearest SL/TP label before it, else the first after it."""
        labels = [k for k, i in enumerate(idx) if self._is_label(self.toks[i])]
        before = [k for k in labels if k < hit_at]
        if before:
            return before[-1]
        after = [k for k in labels if k > hit_at]
        return after[0] if after else None

    @staticmethod
    def _is_label(tok: Tok) -> bool:
        c = tok.concepts
        return tok.kind == WORD and bool(c & {"sl", "tp", "stop_word"} or ("tp_glued" in c and tok.index is not None))

    def _ticked(self, idx: list[int], k: int) -> bool:
        """The rest of the label's line is only a check mark (no price): a TP reported as reached."""
        rest = [self.toks[j] for j in idx[k + 1 :]]
        ticks = [t for t in rest if t.kind == EMO and t.text[0] in _TICKS]
        others = [t for t in rest if t.kind in (WORD, NUM) and not (t.kind == NUM and t.ncls == INDEX)]
        small = [t for t in others if t.kind == NUM and t.value is not None and t.value <= 20 and not t.decimals]
        return bool(ticks) and len(others) == len(small) <= 1

    def _after_side(self, idx: list[int], k: int) -> bool:
        return k > 0 and bool(self.toks[idx[k - 1]].concepts & {"buy", "sell"})

    def _slot_value(self, idx: list[int], k: int) -> bool:
        """``TP 3 - Close All``: a close word filling a TP/SL slot is a manual exit, not an instruction."""
        for j in range(k - 1, max(-1, k - 4), -1):
            prev = self.toks[idx[j]]
            if prev.kind == WORD and prev.concepts & {"tp", "tp_glued", "sl"}:
                return True
            if prev.kind == WORD:
                return False
        return False

    def _target(self, idx: list[int], k: int) -> tuple[Decimal | str | None, int]:
        """First target after a label: a price, breakeven, or ``tpN``; skips articles and prepositions."""
        toks = self.toks
        gap = 0
        saw_to = False
        for j in range(k + 1, len(idx)):
            i = idx[j]
            tok = toks[i]
            if tok.kind == SEP:
                saw_to |= tok.text in (">",)
                continue
            if tok.kind == NUM:
                if tok.ncls in (INDEX, ORDINAL):
                    continue
                if tok.ncls == PRICE and tok.value is not None:
                    return tok.value, i
                return None, -1  # a %, pips or money amount: not a level ("SL 5% below entry")
            c = tok.concepts
            if "breakeven" in c and (saw_to or "entry" not in c or gap <= 2):
                return "breakeven", i
            if "be" in c and (saw_to or gap == 0):
                return "breakeven", i
            if ("tp" in c or "tp_glued" in c) and tok.index is not None:
                return f"tp{tok.index}", i
            if "to" in c:
                saw_to = True
                continue
            gap += 1
            if gap > _ARTICLE_MAX:
                break
        return None, -1

    def _sl(self, idx: list[int], k: int, move_at: int | None, hit_at: int | None) -> None:
        i = idx[k]
        nxt = self.toks[idx[k + 1]] if k + 1 < len(idx) else None
        passive = (
            nxt is not None and "move" in nxt.concepts and k + 2 < len(idx) and "to" in self.toks[idx[k + 2]].concepts
        )
        if passive:  # "SL moved to 2335", "SL nachziehen auf 15.250": the verb after its object
            self.out.consumed.add(idx[k + 1])
            nxt = self.toks[idx[k + 2]]
        to_next = nxt is not None and ("to" in nxt.concepts or (nxt.kind == SEP and nxt.text == ">"))
        before = move_at is not None and move_at < k
        if hit_at is not None and not before:
            self.out.verb_cue = True
            self.add(Action(action="sl_hit"), i, idx[hit_at])
            return
        if not (before or passive or to_next or self.out.update) and self.present.isdisjoint(_BE):
            return  # no rule below can fire: the target could only be "breakeven", and no such word is here
        target, at = self._target(idx, k)
        edited = self.out.update and isinstance(target, Decimal)  # "Update: SL 2340" edits the running trade
        if before or passive or edited or (to_next and target is not None) or target == "breakeven":
            self.out.verb_cue = self.out.verb_cue or before or passive or target == "breakeven"
            self.add(Action(action="move_sl", to=target), i, at)
            if before and move_at is not None:
                self.out.consumed.add(idx[move_at])

    def _tp(self, idx: list[int], k: int, move_at: int | None, hit_at: int | None) -> None:
        toks = self.toks
        i = idx[k]
        tok = toks[i]
        index: int | str | None = tok.index
        if index is None and k > 0 and toks[idx[k - 1]].kind == NUM and toks[idx[k - 1]].ncls == ORDINAL:
            prev_value = toks[idx[k - 1]].value
            index = int(prev_value) if prev_value is not None else None
        if hit_at is not None:
            if index is None and k > 0 and "all" in toks[idx[k - 1]].concepts:
                index = "all"
            price = None
            end = hit_at if hit_at > k else len(idx)
            for j in range(k + 1, end):
                t = toks[idx[j]]
                if t.kind == NUM and t.ncls == PRICE and t.value is not None:
                    if index is None and t.value <= 20 and not t.decimals and price is None:
                        index = int(t.value)
                        continue
                    price = t.value
                    self.out.consumed.add(idx[j])
                    break
            self.out.verb_cue = True
            self.add(Action(action="tp_hit", tp_index=index, price=price), i, idx[hit_at])
            return
        if (move_at is not None and move_at < k) or self.out.update:
            target, at = self._target(idx, k)
            if index is None and isinstance(target, Decimal) and target <= 20 and target == target.to_integral():
                # "set TP 2 to 2360": the small integer is the TP's index, the level follows
                index = int(target)
                target, at = self._target(idx, idx.index(at))
            if isinstance(target, Decimal):
                self.out.verb_cue = True
                self.add(Action(action="modify_tp", tp_index=index, to=target), i, at)
                if move_at is not None:
                    self.out.consumed.add(idx[move_at])
        elif index is not None and _TICK.search(self.text) and self._ticked(idx, k):
            self.add(Action(action="tp_hit", tp_index=index), i)  # "TP2 ✅" alone on its line

    def _entry(self, idx: list[int], k: int, move_at: int) -> None:
        """``change entry to 2345``: a new entry price for a pending order."""
        target, at = self._target(idx, k)
        if isinstance(target, Decimal):
            self.out.verb_cue = True
            self.add(Action(action="modify_entry", to=target), idx[k], at, idx[move_at])

    def _close(self, idx: list[int], k: int) -> None:
        toks = self.toks
        i = idx[k]
        self.out.verb_cue = True
        concepts = set().union(*(toks[j].concepts for j in idx))
        if "all" in concepts:
            used = [j for j in idx if "all" in toks[j].concepts]
            self.add(Action(action="close_all"), i, *used)
            return
        fraction = self._fraction(idx)
        if concepts & {"partial", "half"} or fraction is not None:
            self.add(Action(action="close_partial", fraction=fraction), i)
            return
        targets: list[list[int | None]] = []  # [symbol index, side index] per target, in written order
        for j in idx[k + 1 :]:
            if toks[j].sym is not None:
                targets.append([j, None])
            elif toks[j].concepts & {"buy", "sell"}:
                if not targets:
                    targets.append([None, j])
                elif targets[-1][1] is None:
                    targets[-1][1] = j
        if not targets:
            side_at = next((j for j in idx[:k] if toks[j].concepts & {"buy", "sell"}), None)
            targets.append([None, side_at])
        for sym_at, side_at in targets:
            side = None
            if side_at is not None:
                side = "buy" if "buy" in toks[side_at].concepts else "sell"
            sym = toks[sym_at].sym if sym_at is not None else None
            target = sym if sym is not None else ("reply" if self.has_reply else None)
            used = [j for j in (sym_at, side_at) if j is not None]
            self.add(Action(action="close", target=target, side_filter=side), i, *used)  # type: ignore[arg-type]

    def _cancel(self, idx: list[int], k: int) -> None:
        """Cancel a pending order; the symbol, side and order-type words of the sentence name it."""
        toks = self.toks
        self.out.verb_cue = True
        used = [j for j in idx if toks[j].sym is not None or toks[j].concepts & {"buy", "sell", "limit", "stop_word"}]
        sym = next((toks[j].sym for j in used if toks[j].sym is not None), None)
        self.add(Action(action="cancel", target=sym), idx[k], *used)

    def _sided(self, idx: list[int]) -> bool:
        """A side word and no price in the sentence (an instruction about a position, not a new order)."""
        toks = self.toks
        side = any(toks[j].concepts & {"buy", "sell"} for j in idx)
        return side and not any(toks[j].kind == NUM and toks[j].ncls == PRICE for j in idx)

    def _negated(self, idx: list[int], k: int) -> bool:
        return any("negation" in self.toks[idx[j]].concepts for j in range(max(0, k - 2), k))

    def _fraction(self, idx: list[int]) -> Decimal | None:
        toks = self.toks
        for k, j in enumerate(idx):
            tok = toks[j]
            if "half" in tok.concepts:
                return Decimal("0.5")
            if tok.kind == NUM and tok.value is not None and k + 2 < len(idx) and toks[idx[k + 1]].text == "/":
                den = toks[idx[k + 2]].value  # "close 1/3"
                if den is not None and 0 < tok.value < den <= 10 and not tok.decimals:
                    return (tok.value / den).quantize(Decimal("0.0001"))
            if tok.kind == NUM and tok.ncls == PERCENT and tok.value is not None and 0 < tok.value <= 100:
                return tok.value / 100
        return None

    def _reports(self) -> None:
        """Signed pip or money amounts (``+20 pips``) are profit reports when nothing else was said."""
        if "+" not in self.text and "＋" not in self.text:
            return  # every sign this looks for contains a plus; most messages have none
        for i, tok in enumerate(self.toks):
            if tok.kind != NUM or tok.start == 0:
                continue
            sign = self.text[max(0, tok.start - 2) : tok.start]
            if not (sign.endswith(("+", "＋")) or sign in ("+$", "+€", "+£")):
                continue
            if tok.ncls == PIPS:
                self.add(Action(action="profit_report", pips=tok.value), i)
                return
            if tok.ncls == MONEY:
                self.add(Action(action="profit_report", amount=tok.value), i)
                return


_STRONG_BE_CONCEPT_GUARD = frozenset({"breakeven"})
_EMPTY: frozenset[str] = frozenset()
_CONCEPTS = operator.attrgetter("concepts")
_TICKS = "✅✔☑"
_TICK = re.compile(f"[{_TICKS}]")  # no check mark in the text: no "TP2 ✅" report to look for
_BE = frozenset({"breakeven", "be"})  # the concepts _target reads as "breakeven"
# Characters of the original text that can become a ">" separator or a check mark: a cheap test that
# spares most messages the look for one among their tokens.
_ARROWISH = re.compile("[" + re.escape(">" + _TICKS + "".join(chr(k) for k, v in TABLE.items() if v == ">")) + "]")
# Concepts that some rule of _Scanner._sentence acts on; a word with none of them is only counted.
_CUES = frozenset(
    {
        "sl",
        "stop_word",
        "tp",
        "tp_glued",
        "close",
        "cancel",
        "entry",
        "stopped",
        "half",
        "partial",
        "breakeven",
        "triggered",
        "hold",
    }
)
_HIT = frozenset({"hit", "stopped"})
_MAX_CUES = 64
# Concepts without which no sentence can hold a follow-up cue (lets plain signals skip the scan).
_TRIGGERS = frozenset(
    {
        "move",
        "hit",
        "stopped",
        "close",
        "cancel",
        "partial",
        "half",
        "breakeven",
        "triggered",
        "hold",
        "be",
        "update",
    }
)


def _label_then_to(toks: list[Tok]) -> bool:
    """An SL label directly followed by a "to" word (``SL to 2340``).

    "to" words are common prepositions ("sell at 2350", "a", "en"): without any other trigger, an arrow or a
    check mark, the only rule they can fire is ``_sl``'s "label, then to, then a target", so the scan is run
    only when that shape exists. Keep this in step with ``_Scanner._sentence`` when rules change.
    """
    for i in range(len(toks) - 1):
        c = toks[i].concepts
        if c and ("sl" in c or "stop_word" in c) and "to" in toks[i + 1].concepts:
            return True
    return False


def scan_followups(toks: list[Tok], text: str, *, has_reply: bool) -> FollowUps:
    """Find follow-up actions in ``toks`` (see module docstring)."""
    return _Scanner(toks, text, has_reply).run()
