"""A tiny 5x7 bitmap font for labelling pictures without an imaging library (numpy only).

Glyphs are 9 rows high: 7 above the baseline, 2 for the descenders of ``g j p q y ,``.
Covers ``a-z A-Z 0-9``, space and ``. , - ( ) / : _``; any other character draws as ``?``.
:func:`text_mask` gives a boolean mask (True where ink is), scaled by an integer factor, one empty
column between glyphs; :func:`draw_text` paints it into an RGB ``uint8`` image in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GLYPH_HEIGHT", "GLYPH_WIDTH", "draw_text", "text_mask", "text_size"]

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 9

# Each glyph: 9 rows, top to bottom, one hex byte per row; bit 4 is the leftmost column.
_GLYPHS: dict[str, str] = {
    "A": "0E11111F1111110000", "B": "1E11111E11111E0000", "C": "0E11101010110E0000", "D": "1C12111111121C0000",
    "E": "1F10101E10101F0000", "F": "1F10101E1010100000", "G": "0E11101711110F0000", "H": "1111111F1111110000",
    "I": "0E04040404040E0000", "J": "0702020202120C0000", "K": "111214181412110000", "L": "1010101010101F0000",
    "M": "111B15151111110000", "N": "111119151311110000", "O": "0E11111111110E0000", "P": "1E11111E1010100000",
    "Q": "0E11111115120D0000", "R": "1E11111E1412110000", "S": "0F10100E01011E0000", "T": "1F0404040404040000",
    "U": "1111111111110E0000", "V": "11111111110A040000", "W": "1111111515150A0000", "X": "11110A040A11110000",
    "Y": "11110A040404040000", "Z": "1F01020408101F0000",
    "a": "00000E010F110F0000", "b": "1010161911111E0000", "c": "00000E1010110E0000", "d": "01010D1311110F0000",
    "e": "00000E111F100E0000", "f": "0609081C0808080000", "g": "00000F1111110F010E", "h": "101016191111110000",
    "i": "04000C0404040E0000", "j": "02000602020202120C", "k": "101012141814120000", "l": "0C04040404040E0000",
    "m": "00001A151511110000", "n": "000016191111110000", "o": "00000E1111110E0000", "p": "00001E1111111E1010",
    "q": "00000F1111110F0101", "r": "000016191010100000", "s": "00000E100E011E0000", "t": "08081C080809060000",
    "u": "0000111111130D0000", "v": "00001111110A040000", "w": "0000111115150A0000", "x": "0000110A040A110000",
    "y": "0000111111110F010E", "z": "00001F0204081F0000",
    "0": "0E11131519110E0000", "1": "040C040404040E0000", "2": "0E11010204081F0000", "3": "1F02040201110E0000",
    "4": "02060A121F02020000", "5": "1F101E0101110E0000", "6": "0608101E11110E0000", "7": "1F0102040808080000",
    "8": "0E11110E11110E0000", "9": "0E11110F01020C0000",
    " ": "000000000000000000", ".": "00000000000C0C0000", ",": "00000000000C0C0408", "-": "0000001F0000000000",
    "(": "020408080804020000", ")": "080402020204080000", "/": "010102040810100000", ":": "000C0C000C0C000000",
    "_": "0000000000001F0000", "?": "0E1101020400040000",
}  # fmt: skip


def _bitmap(code: str) -> np.ndarray:
    rows = bytes.fromhex(code)
    return np.array([[(row >> (GLYPH_WIDTH - 1 - col)) & 1 for col in range(GLYPH_WIDTH)] for row in rows], bool)


_BITMAPS = {char: _bitmap(code) for char, code in _GLYPHS.items()}


def text_size(text: str, scale: int = 2) -> tuple[int, int]:
    """``(rows, cols)`` of :func:`text_mask` for ``text`` at ``scale``."""
    return GLYPH_HEIGHT * scale, max(0, len(text) * (GLYPH_WIDTH + 1) - 1) * scale


def text_mask(text: str, scale: int = 2) -> np.ndarray:
    """Boolean ink mask of ``text``: ``(9 * scale, (6 * len(text) - 1) * scale)``, True where a glyph draws."""
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
