"""Text as one font can print it: a character the font lacks becomes a visible mark, and is noted.

fpdf2 draws a character its font has no glyph for as nothing, and only logs a warning when
the file is written, so a customer named "株式会社 東京商事" got a statement without a name.
fpdf2's fallback fonts (`set_fallback_fonts`) need a second font file, which we do not
ship. So the statement shows a mark (U+FFFD, or "?" in a font without it) where a character
is missing, and the caller is told which characters those were.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import cache

from fontTools.ttLib import TTFont

REPLACEMENT = "\ufffd"


class Printable:
    """Maps text onto the characters of one font; `missing` holds those it could not print."""

    def __init__(self, font_path: str) -> None:
        self._font = _codepoints(font_path)
        self.mark = REPLACEMENT if ord(REPLACEMENT) in self._font else "?"
        self.missing: dict[str, None] = {}  # a set that keeps the order they were met in
        self._table = _Table(self._shown)

    def __call__(self, text: str) -> str:
        return text.translate(self._table)

    def _shown(self, char: str) -> str:
        codepoint = ord(char)
        if char.isspace() and not (codepoint in self._font and unicodedata.category(char) == "Zs"):
            return " "  # a tab or line break in a name: one line of text, words kept apart
        if codepoint in self._font:
            return char
        if _invisible(char):
            return ""  # a joiner or variation selector shows nothing anyway
        self.missing[char] = None
        return self.mark


class _Table(dict):
    """`str.translate`'s table, filled in as characters are met: each is judged once."""

    def __init__(self, judge: Callable[[str], str]) -> None:
        super().__init__()
        self._judge = judge

    def __missing__(self, codepoint: int) -> str:
        shown = self[codepoint] = self._judge(chr(codepoint))
        return shown


def _invisible(char: str) -> bool:
    """Format characters (zero-width joiners, direction marks) and variation selectors."""
    codepoint = ord(char)
    return (
        unicodedata.category(char) == "Cf" or 0xFE00 <= codepoint <= 0xFE0F or 0xE0100 <= codepoint <= 0xE01EF
    )


@cache
def _codepoints(font_path: str) -> frozenset[int]:
    """The characters the font has a glyph for (its cmap; read once per process)."""
    return frozenset(TTFont(font_path, lazy=True).getBestCmap())


def described(char: str) -> str:
    """A character for a message: itself and its code point ("株 U+682A"), or the code point
    alone for one that would not show (a control character)."""
    code = f"U+{ord(char):04X}"
    return f"{char} {code}" if char.isprintable() else code
