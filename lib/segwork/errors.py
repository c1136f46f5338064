"""segwork's exception types; only ``cli.py`` turns them into stderr and an exit code."""

from __future__ import annotations


class SegworkInputError(ValueError):
    """Bad input the user can fix: the message is one line naming the file and the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ReportError(Exception):
    """A report notebook failed or could not run (exit 1); the message is one line naming what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ResourceError(Exception):
    """The machine ran out of memory or disk (exit 3); the message is one line saying which."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
