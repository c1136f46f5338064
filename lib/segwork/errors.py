"""The one exception type for bad input; only ``cli.py`` turns it into stderr + exit 2."""

from __future__ import annotations


class SegworkInputError(ValueError):
    """Bad input the user can fix: the message is one line naming the file and the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
