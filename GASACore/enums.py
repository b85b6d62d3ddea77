"""``StrEnum``: an enumeration whose members are their string values (Python 3.10 has no ``enum.StrEnum``).

Members compare equal to their values and print as them, so they go into JSON, argv and log lines
unchanged::

    >>> class Colour(StrEnum):
    ...     RED = "red"
    >>> Colour.RED == "red", str(Colour.RED), f"{Colour.RED}", Colour("red") is Colour.RED
    (True, 'red', 'red', True)
"""

from __future__ import annotations

from enum import Enum

__all__ = ["StrEnum"]


class StrEnum(str, Enum):
    """A ``str`` enumeration that prints and formats as its value (like ``enum.StrEnum`` of Python 3.11)."""

    __str__ = str.__str__
    __format__ = str.__format__

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every member's value, in definition order."""
        return tuple(member.value for member in cls)
