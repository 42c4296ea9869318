"""Text normaliser, tokenizer and number classifier: the first stage of the parser.

The normaliser maps characters one-to-one (Persian/Arabic-Indic and full-width digits, NBSP, dashes, the
Arabic comma and decimal sign, mathematical bold letters...) so every token's offsets are offsets into the
ORIGINAL text. The tokenizer is one compiled regex pass; words are then merged into multi-word phrases from
the lexicon and each number is classified (price candidate, index, lot, pips, %, time, date, id...) from its
notation and neighbours, before any field is assigned.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

import msgspec

from signalos_core.parsing._lexicon import Lexicon, normalise_key

__all__ = ["TABLE", "Tok", "tokenize"]

# Token kinds.
NL, WORD, NUM, SEP, EMO = 0, 1, 2, 3, 4
# Number classes; only PRICE numbers can become entry/SL/TP values.
PRICE, INDEX, LOT, LEVERAGE, PERCENT, PIPS, TIME, DATE, ID, MONEY, RATIO, TIMEFRAME, ANNOT, ORDINAL = range(14)


def _build_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for base in (0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0xFF10):
        for i in range(10):
            table[base + i] = str(i)
    # Full-width ASCII, mathematical alphanumerics, circled/superscript digits: keep only 1:1 NFKC mappings
    # so offsets stay valid.
    for lo, hi in ((0xFF01, 0xFF5E), (0x1D400, 0x1D7FF), (0x2070, 0x209F), (0x00B2, 0x00B9)):
        for cp in range(lo, hi + 1):
            folded = unicodedata.normalize("NFKC", chr(cp))
            if len(folded) == 1 and folded.isascii():
                table[cp] = folded
    for cp in (0x00A0, 0x1680, 0x202F, 0x205F, 0x3000, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E, 0x2028, 0x2029):
        table[cp] = " "
    for cp in range(0x2000, 0x200B):
        table[cp] = " "
    for cp in (0x2192, 0x21D2, 0x279C, 0x2794, 0x27A1, 0x2B95, 0x27F6):  # arrows: "SL → 2340"
        table[cp] = ">"
    for cp in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63, 0x2043):
        table[cp] = "-"
    table.update(
        {
            0x060C: ",",
            0x066B: ".",
            0x066C: ",",
            0x066A: "%",
            0x061B: ";",
            0x061F: "?",
            0x2019: "'",
            0x2018: "'",
            0x02BC: "'",
            0x2044: "/",
            0x2215: "/",
            0x00B7: ".",
            0x0D: "\n",
            0x0B: "\n",
            0x0C: "\n",
            0x85: "\n",
            0x09: " ",
        }
    )
    return table


_TABLE = _build_table()
TABLE = _TABLE  # read-only: the follow-up scan derives a prefilter from it


def _table_class() -> re.Pattern[str]:
    """A character class covering every character ``_TABLE`` maps (and some it does not).

    Code points less than 64 apart are merged into one range: a superset only costs a needless
    translate(), and a class of ~20 ranges is tested several times faster than the exact ~65.
    """
    ranges: list[list[int]] = []
    for cp in sorted(_TABLE):
        if ranges and cp - ranges[-1][1] <= 64:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return re.compile(
        "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"
    )


# Most non-ASCII messages (emoji, Cyrillic, accented Latin) contain no character the table maps; one
# search for such a character is much cheaper than translate(), which raises and catches a LookupError
# internally for every character the table does not map.
_MAPPED = _table_class()
_MASTER = re.compile(
    r"(?P<nl>\n)"
    r"|(?P<url>(?:https?://|www\.)\S+)"
    r"|(?P<sc>:[a-z][a-z0-9_+\-]{1,40}:)"
    r"|(?P<word>[^\W_]*[^\W\d_][^\W_]*(?:[./'][^\W\d_][^\W_]*)*)"
    r"|(?P<num>\d+(?:[.,]\d+)*)"
    r"|(?P<sep>[@:/\-&,=#_(){}\[\]+%$€£!?;|.*<>~《》])"
    r"|(?P<emo>[^\s\w@:/\-&,=#_(){}\[\]+%$€£!?;|.*<>~《》]+)"
)
_G_NL, _G_URL, _G_SC, _G_WORD, _G_NUM, _G_SEP, _G_EMO = (
    _MASTER.groupindex[g] for g in ("nl", "url", "sc", "word", "num", "sep", "emo")
)
_LEAD_DIGITS = re.compile(r"(\d+)([^\W\d_]+)$")
_TRAIL_DIGITS = re.compile(r"([^\W\d_]+)(\d+)$")
# d/m/y or y-m-d written with separators the number regex splits on ("12/05/2024", "2024-05-12")
_DATE_SPAN = re.compile(
    r"(?<![\d.,])(?:(?:[12]\d|3[01]|0?[1-9])[/-](?:1[0-2]|0?[1-9])[/-](?:\d{4}|\d{2})|\d{4}-(?:1[0-2]|0\d)-\d{2})(?![\d.,])"
)
_DATE = re.compile(r"(?:\d{4}[.,]\d{1,2}[.,]\d{1,2}|\d{1,2}[.,]\d{1,2}[.,]\d{4})$")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_EURO_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+,\d+$")
_ORDINALS = frozenset({"st", "nd", "rd", "th", "er", "º", "ª", "о", "ой", "й"})
_TIMEFRAMES = frozenset({"m", "h", "d", "w", "min", "mn", "hr", "hrs", "mins", "hour", "hours", "minutes"})
_LABELS = frozenset({"tp", "tp_glued", "sl", "entry"})
_SHORTCODE_CONCEPTS = {
    ":x:": "sl",
    ":no_entry:": "sl",
    ":octagonal_sign:": "sl",
    ":red_circle:": "sl",
    ":dart:": "tp",
    ":large_blue_circle:": "tp",
    ":blue_circle:": "tp",
    ":small_blue_diamond:": "tp",
}
# Emoji used as field labels when directly followed by a number (🔴 1.05 = SL, 🔵/🔹/🎯 = TP).
_EMOJI_LABELS = {
    "🔴": "sl",
    "❌": "sl",
    "🛑": "sl",
    "✖": "sl",
    "✗": "sl",
    "✘": "sl",
    "⛔": "sl",
    "🔻": "sl",
    "🔵": "tp",
    "🔹": "tp",
    "🎯": "tp",
    "💎": "tp",
}
_KEYCAP = "\u20e3"
_PHRASE_GLUE = ("-", "&")


class Tok(msgspec.Struct, gc=False, eq=False):
    """One token; ``start``/``end`` are offsets into the original text, ``line`` its line in the message.

    A msgspec Struct rather than a plain class for speed: tokens are stamped out of cached templates with
    ``msgspec.structs.replace`` (one C call, about half the cost of a slotted instance and its stores) and
    field reads are slot reads. Not garbage-collected (a token never refers back to a token) and compared by
    identity (``eq=False``), like a plain object.
    """

    kind: int
    start: int
    end: int
    text: str
    concepts: frozenset[str] = frozenset()
    sym: str | None = None
    typo: bool = False
    index: int | None = None
    value: Decimal | None = None
    ncls: int = PRICE
    nflag: str | None = None
    raw: str = ""
    decimals: int = 0
    line: int = 0

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Tok({self.kind},{self.text!r},{sorted(self.concepts)},{self.value},{self.ncls})"


def normalise(text: str) -> str:
    """Map look-alike characters to ASCII one-to-one (same length as ``text``)."""
    return text if text.isascii() or not _MAPPED.search(text) else text.translate(_TABLE)


def parse_number(raw: str) -> tuple[Decimal | None, int, str | None]:
    """Value, decimal places and notation flag of a digit run (``108,70`` -> 108.70 with ``comma_decimal``)."""
    dots, commas = raw.count("."), raw.count(",")
    flag: str | None = None
    text = raw
    if dots + commas == 0 or (commas == 0 and dots == 1):
        pass
    elif dots == 0 and commas == 1:
        head, tail = raw.split(",")
        if len(tail) == 3 and head != "0":
            text = head + tail  # 12,500: thousands separator
        else:
            text, flag = head + "." + tail, "comma_decimal"
    elif _THOUSANDS.match(raw):
        text = raw.replace(",", "")
    elif _EURO_THOUSANDS.match(raw):
        text, flag = raw.replace(".", "").replace(",", "."), "comma_decimal"
    else:
        return (None, 0, "corrupted_number")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex only lets digits and separators through
        return (None, 0, "corrupted_number")
    _, _, frac = text.partition(".")
    return (value, len(frac), flag)


# A chunk's tokens as templates (offsets relative to the chunk) and, unless all are empty/false (None),
# the indices (within the chunk) of words that may start a lexicon phrase and of numbers, and whether it
# holds a slash.
ChunkEntry = tuple[tuple[Tok, ...], tuple[tuple[int, ...], tuple[int, ...], bool] | None]
_CACHE_MAX = 100_000


def _num_piece(lex: Lexicon, raw: str) -> tuple[Decimal | None, int, str | None, int]:
    """Value, decimal places, notation flag and class of a digit run (cached per lexicon)."""
    value, decimals, nflag = parse_number(raw)
    ncls = PRICE
    if _DATE.match(raw):
        ncls, nflag = DATE, None
    entry = (value, decimals, nflag, ncls)
    if len(lex.number_cache) < _CACHE_MAX:
        lex.number_cache[raw] = entry
    return entry


def _chunk_entry(lex: Lexicon, chunk: str) -> ChunkEntry:
    """Tokens of one chunk of lower-cased text between spaces/newlines, as cached templates.

    No token spans a space or a newline and the master regex has no look-around, so tokenizing a chunk
    alone gives exactly the tokens the whole text would; chunks are words in the wide sense (``sl:``,
    ``2350``, ``tp1=2360``) and repeat across messages like words do, hence the per-lexicon cache.
    """
    toks: list[Tok] = []
    starts: list[int] = []
    for m in _MASTER.finditer(chunk):
        group = m.lastindex
        start, end = m.span()
        if group == _G_WORD:
            first = len(toks)
            _word_token(lex, start, end, m[0], toks)
            starts.extend(k for k in range(first, len(toks)) if toks[k].text in lex.phrases)
        elif group == _G_NUM:
            raw = m[0]
            tok = Tok(NUM, start, end, raw)
            tok.value, tok.decimals, tok.nflag, tok.ncls = lex.number_cache.get(raw) or _num_piece(lex, raw)
            tok.raw = raw
            toks.append(tok)
        elif group == _G_SEP:
            toks.append(Tok(SEP, start, end, m[0]))
        elif group == _G_NL:  # pragma: no cover - chunks are split at newlines
            toks.append(Tok(NL, start, end, "\n"))
        elif group in (_G_EMO, _G_SC):
            tok = Tok(EMO, start, end, m[0])
            label = _SHORTCODE_CONCEPTS.get(tok.text) if group == _G_SC else _EMOJI_LABELS.get(tok.text[0])
            if label:
                tok.concepts = frozenset({label, "emoji_label"})
            toks.append(tok)
        # urls are dropped: their words ("EURUSD-Short-...") are not part of the message's fields
    num_at = tuple(k for k, t in enumerate(toks) if t.kind == NUM)
    has_slash = any(t.kind == SEP and t.text == "/" for t in toks)
    entry = (tuple(toks), (tuple(starts), num_at, has_slash) if starts or num_at or has_slash else None)
    if len(lex.chunk_cache) < _CACHE_MAX:
        lex.chunk_cache[chunk] = entry
    return entry


def _word_token(lex: Lexicon, start: int, end: int, text: str, out: list[Tok]) -> None:
    if text[0].isdigit():
        m = _LEAD_DIGITS.match(text)
        if m:
            digits, unit = m.group(1), m.group(2)
            num = Tok(NUM, start, start + len(digits), digits)
            num.value, num.raw = Decimal(digits), digits
            concepts = lex.words.get(unit, frozenset())
            if unit in _ORDINALS:
                num.ncls = ORDINAL
            elif unit in _TIMEFRAMES:
                num.ncls = TIMEFRAME
            elif "pips" in concepts:
                num.ncls = PIPS
            elif unit == "x":
                num.ncls = LEVERAGE
            elif unit == "k" and len(digits) <= 3:
                num.value = Decimal(digits) * 1000  # "65k": thousands written with a k
                num.raw = str(num.value)
            elif "lot" in concepts:
                num.ncls = LOT
            elif "sats" in concepts:
                num.nflag = "sats"
            else:
                out.append(num)
                _word_token(lex, start + len(digits), end, unit, out)
                return
            out.append(num)
            return
    tok = Tok(WORD, start, end, text)
    key = normalise_key(text)
    known = lex.words.get(key)
    if known is not None:
        tok.concepts = known
    sym, typo = lex.resolve_symbol(key)
    if sym is None and known is None and not text.isalpha():
        m = _TRAIL_DIGITS.match(key)
        if m:
            head = lex.words.get(m.group(1), frozenset())
            if head & _LABELS:
                tok.concepts, tok.index = head, int(m.group(2)) if len(m.group(2)) <= 3 else None
            elif m.group(1) == "x":
                tok.kind, tok.ncls = NUM, LEVERAGE
    tok.sym, tok.typo = sym, typo
    tok.text = key
    out.append(tok)


def tokenize(text: str, lex: Lexicon) -> list[Tok]:
    """Tokens of ``text`` with concepts, symbols and classified numbers."""
    norm = normalise(text)
    low = norm.lower()
    if len(low) != len(norm):  # a few characters (e.g. 'İ') lower-case to two; keep offsets exact
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in norm)
    toks: list[Tok] = []
    append = toks.append
    stamp = msgspec.structs.replace
    cache = lex.chunk_cache
    slash = False
    phrase_starts: list[int] = []
    nums: list[int] = []
    # The hot loop: split at newlines and spaces (C string methods, offsets by arithmetic), look each chunk's
    # token templates up and stamp tokens out of them (one C call per token).
    pos = 0
    for line_no, line in enumerate(low.split("\n")):
        if line_no:  # every line but the first follows a newline token (which counts as on the new line)
            append(Tok(NL, pos - 1, pos, "\n", line=line_no))
        for chunk in line.split(" "):
            if chunk:
                pieces, extra = cache.get(chunk) or _chunk_entry(lex, chunk)
                if extra is not None:  # most chunks start no phrase and hold no number or slash
                    starts, num_at, has_slash = extra
                    base = len(toks)
                    for k in starts:  # plain loops: zero or one item, a comprehension costs a function call
                        phrase_starts.append(base + k)
                    for k in num_at:
                        nums.append(base + k)
                    slash = slash or has_slash
                for piece in pieces:
                    append(stamp(piece, start=pos + piece.start, end=pos + piece.end, line=line_no))
            pos += len(chunk) + 1
    count = len(toks)
    if phrase_starts:
        toks = _merge_phrases(toks, lex, phrase_starts)
    if slash:
        toks = _merge_pairs(toks, lex)
    if len(toks) != count:  # merges shifted the indices
        nums = []
        for i, t in enumerate(toks):
            if t.kind == NUM:
                nums.append(i)
    if nums and ("/" in low or "-" in low):
        _mark_dates(toks, low, nums)
    _classify_numbers(toks, low, nums)
    return toks


def _merge_pairs(toks: list[Tok], lex: Lexicon) -> list[Tok]:
    """``EUR/ NZD``, ``BTC / USDT``: a pair written as two words around a slash."""
    out: list[Tok] = []
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        if (
            tok.kind == WORD
            and i + 2 < n
            and toks[i + 1].kind == SEP
            and toks[i + 1].text == "/"
            and toks[i + 2].kind == WORD
        ):
            sym = lex.pair(tok.text, toks[i + 2].text)
            if sym is not None:
                merged = Tok(WORD, tok.start, toks[i + 2].end, tok.text + "/" + toks[i + 2].text)
                merged.sym = sym
                merged.line = tok.line
                out.append(merged)
                i += 3
                continue
        out.append(tok)
        i += 1
    return out


def _merge_phrases(toks: list[Tok], lex: Lexicon, starts: list[int]) -> list[Tok]:
    """Merge multi-word lexicon phrases (``stop loss``, ``precio de entrada``) into one token each.

    ``starts`` are the indices of words that begin some phrase; the list is rebuilt only around matches.
    Hyphens and ampersands between the words are skipped (``stop-loss``, ``s & p``).
    """
    index = lex.phrase_index
    out: list[Tok] = []
    last = 0
    n = len(toks)
    for i in starts:
        if i < last:
            continue
        j = i + 1
        while j < n and toks[j].kind == SEP and toks[j].text in _PHRASE_GLUE:
            j += 1
        if j >= n or toks[j].kind != WORD:
            continue
        tok = toks[i]
        candidates = index[tok.text].get(toks[j].text)
        if candidates is None:
            continue
        second = j + 1
        for rest, text, concepts, sym in candidates:
            j, k = second, 0
            while k < len(rest) and j < n:
                nxt = toks[j]
                if nxt.kind == SEP and nxt.text in _PHRASE_GLUE:
                    j += 1
                    continue
                if nxt.kind != WORD or nxt.text != rest[k]:
                    break
                j += 1
                k += 1
            if k == len(rest):
                merged = Tok(WORD, tok.start, toks[j - 1].end, text)
                merged.concepts = concepts
                merged.sym = sym
                merged.index = toks[j - 1].index
                merged.line = tok.line
                out.extend(toks[last:i])
                out.append(merged)
                last = j
                break
    if not last:
        return toks
    out.extend(toks[last:])
    return out


def _mark_dates(toks: list[Tok], low: str, nums: list[int]) -> None:
    # Every date the regex finds has a middle digit group written between two separators ("12/05/2024",
    # "2024-05-12"), which is always a number token with a touching "/" or "-" token on both sides. The
    # regex (a look-behind first, so no fast prefix scan) is only run when such a number exists: zones and
    # ranges ("2340-2345") have one separator and skip it.
    last = len(toks) - 1
    for i in nums:
        if 0 < i < last:
            tok, before, after = toks[i], toks[i - 1], toks[i + 1]
            if (
                before.kind == SEP
                and after.kind == SEP
                and before.text in "/-"
                and after.text in "/-"
                and before.end == tok.start
                and after.start == tok.end
            ):
                break
    else:
        return
    spans = [m.span() for m in _DATE_SPAN.finditer(low)]
    if not spans:
        return
    for i in nums:
        tok = toks[i]
        if any(start <= tok.start and tok.end <= end for start, end in spans):
            tok.ncls = DATE


def _after_label(toks: list[Tok], i: int) -> bool:
    """True when the nearest word before token ``i`` (same line, skipping punctuation) is a field label."""
    for j in range(i - 1, max(-1, i - 4), -1):
        tok = toks[j]
        if tok.kind == NL:
            return False
        if tok.kind == WORD:
            return bool(tok.concepts & _LABELS)
    return False


def _classify_numbers(toks: list[Tok], low: str, nums: list[int]) -> None:  # noqa: PLR0915 - ordered rules
    n = len(toks)
    for i in nums:
        tok = toks[i]
        if tok.kind != NUM or tok.ncls != PRICE:
            continue
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < n else None
        before = low[tok.start - 1] if tok.start else ""
        if before == "+" or (before == "-" and nxt is not None and nxt.kind == WORD and "pips" in nxt.concepts):
            tok.ncls = ANNOT
        if nxt is not None:
            if nxt.kind == SEP and nxt.text == "%" and nxt.start - tok.end <= 1:
                tok.ncls = PERCENT
                continue
            if nxt.kind == EMO and nxt.start == tok.end and nxt.text.lstrip("\ufe0f").startswith(_KEYCAP):
                tok.ncls = INDEX
                continue
            if nxt.kind == WORD:
                c = nxt.concepts
                if "pips" in c:
                    tok.ncls = PIPS
                    continue
                if "sats" in c:
                    tok.nflag = "sats"
                elif "money" in c:
                    tok.ncls = MONEY
                    continue
                elif "lot" in c and nxt.text in ("lot", "lots", "lote", "lotes", "лот") and not _after_label(toks, i):
                    tok.ncls = LOT
                    continue
                elif nxt.text == "x" and nxt.start == tok.end:
                    tok.ncls = LEVERAGE  # "20.0X"
                    continue
                elif nxt.text == "k" and nxt.start == tok.end and tok.value is not None and tok.value < 1000:
                    tok.value = tok.value * 1000  # "67.5k"
                    tok.raw = format(tok.value, "f")
                    tok.decimals = max(0, -int(tok.value.normalize().as_tuple().exponent))
                elif nxt.text in _TIMEFRAMES and nxt.start == tok.end:
                    tok.ncls = TIMEFRAME
                    continue
            if nxt.kind == SEP and nxt.text in "$€£" and nxt.start == tok.end:
                tok.ncls = MONEY
                continue
            if (
                nxt.kind == SEP
                and nxt.text == ":"
                and nxt.end < len(low)
                and low[nxt.end : nxt.end + 2].isdigit()
                and nxt.start == tok.end
                and len(tok.raw) <= 2
                and (i + 2 < n and len(toks[i + 2].raw) == 2)
            ):
                tok.ncls = TIME
                toks[i + 2].ncls = TIME
                continue
        if tok.ncls == ANNOT:
            continue
        if before in "$€£" and before:
            tok.ncls = MONEY
            continue
        if prev is not None:
            c = prev.concepts
            if prev.kind == WORD:
                if "lot" in c:
                    tok.ncls = LOT
                elif "leverage" in c:
                    tok.ncls = LEVERAGE
                elif "id" in c and not (c & _LABELS):
                    tok.ncls = ID
                elif "ratio" in c:
                    tok.ncls = RATIO
                elif "risk" in c and not (c & _LABELS):
                    # "risk 2%", "risk 1-2%": a share of the account, never a price or a lot size
                    ahead = low[tok.end : tok.end + 6]
                    tok.ncls = PERCENT if "%" in ahead else ANNOT
            elif (
                prev.kind == SEP
                and prev.text == "#"
                and prev.end == tok.start
                and not (i >= 2 and toks[i - 2].concepts & _LABELS)
            ):
                tok.ncls = ID
            elif prev.kind == SEP and prev.text == ":" and i >= 2 and toks[i - 2].ncls == TIME:
                tok.ncls = TIME
        if tok.ncls == PRICE and nxt is not None and nxt.kind == SEP and nxt.text in ").":
            # "1)" or "1." opening a line is a list index, not a price
            line_start = prev is None or prev.kind == NL
            if line_start and tok.value is not None and tok.decimals == 0 and tok.value < 100 and nxt.start == tok.end:
                tok.ncls = INDEX
