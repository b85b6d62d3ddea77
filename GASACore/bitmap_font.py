"""A tiny 5x7 bitmap font for labelling pictures without an imaging library (numpy only).

Covers ``a-z A-Z 0-9``, space and ``. , - ( ) / : _``; any other character draws as ``?``.
:func:`text_mask` gives a boolean mask (True where ink is), scaled by an integer factor, one empty
column between glyphs; :func:`draw_text` paints it into an RGB ``uint8`` image in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GLYPH_HEIGHT", "GLYPH_WIDTH", "draw_text", "text_mask", "text_size"]

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7

# Each glyph: 7 rows, top to bottom, one hex byte per row; bit 4 is the leftmost column.
_GLYPHS: dict[str, str] = {
    "A": "0E11111F111111", "B": "1E11111E11111E", "C": "0E11101010110E", "D": "1C12111111121C",
    "E": "1F10101E10101F", "F": "1F10101E101010", "G": "0E11101711110F", "H": "1111111F111111",
    "I": "0E04040404040E", "J": "0702020202120C", "K": "11121418141211", "L": "1010101010101F",
    "M": "111B1515111111", "N": "11111915131111", "O": "0E11111111110E", "P": "1E11111E101010",
    "Q": "0E11111115120D", "R": "1E11111E141211", "S": "0F10100E01011E", "T": "1F040404040404",
    "U": "1111111111110E", "V": "11111111110A04", "W": "1111111515150A", "X": "11110A040A1111",
    "Y": "11110A04040404", "Z": "1F01020408101F",
    "a": "00000E010F110F", "b": "1010161911111E", "c": "00000E1010110E", "d": "01010D1311110F",
    "e": "00000E111F100E", "f": "0609081C080808", "g": "000F11110F010E", "h": "10101619111111",
    "i": "04000C0404040E", "j": "0200060202120C", "k": "10101214181412", "l": "0C04040404040E",
    "m": "00001A15151111", "n": "00001619111111", "o": "00000E1111110E", "p": "00001E111E1010",
    "q": "00000D130F0101", "r": "00001619101010", "s": "00000E100E011E", "t": "08081C08080906",
    "u": "0000111111130D", "v": "00001111110A04", "w": "0000111115150A", "x": "0000110A040A11",
    "y": "000011110F010E", "z": "00001F0204081F",
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C",
    " ": "00000000000000", ".": "00000000000C0C", ",": "000000000C0408", "-": "0000001F000000",
    "(": "02040808080402", ")": "08040202020408", "/": "01010204081010", ":": "000C0C000C0C00",
    "_": "0000000000001F", "?": "0E110102040004",
}  # fmt: skip


def _bitmap(code: str) -> np.ndarray:
    rows = bytes.fromhex(code)
    return np.array([[(row >> (GLYPH_WIDTH - 1 - col)) & 1 for col in range(GLYPH_WIDTH)] for row in rows], bool)


_BITMAPS = {char: _bitmap(code) for char, code in _GLYPHS.items()}


def text_size(text: str, scale: int = 2) -> tuple[int, int]:
    """``(rows, cols)`` of :func:`text_mask` for ``text`` at ``scale``."""
    return GLYPH_HEIGHT * scale, max(0, len(text) * (GLYPH_WIDTH + 1) - 1) * scale


def text_mask(text: str, scale: int = 2) -> np.ndarray:
    """Boolean ink mask of ``text``: ``(7 * scale, (6 * len(text) - 1) * scale)``, True where a glyph draws."""
    if scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    rows, cols = text_size(text, 1)
    mask = np.zeros((rows, cols), bool)
    for index, char in enumerate(text):
        left = index * (GLYPH_WIDTH + 1)
        mask[:, left : left + GLYPH_WIDTH] = _BITMAPS.get(char, _BITMAPS["?"])
    return np.kron(mask, np.ones((scale, scale), bool)).astype(bool)


def draw_text(
    image: np.ndarray, text: str, top: int, left: int, color: tuple[int, int, int] = (255, 255, 255), scale: int = 2
) -> None:
    """Paint ``text`` into the RGB ``image`` (in place), top-left corner at ``(top, left)``; clipped at the edges."""
    mask = text_mask(text, scale)
    if top < 0 or left < 0:
        mask, top, left = mask[max(0, -top) :, max(0, -left) :], max(0, top), max(0, left)
    rows = min(mask.shape[0], image.shape[0] - top)
    cols = min(mask.shape[1], image.shape[1] - left)
    if rows <= 0 or cols <= 0:
        return
    region = image[top : top + rows, left : left + cols]
    region[mask[:rows, :cols]] = color
