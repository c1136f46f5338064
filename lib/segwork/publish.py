"""Safe writing of OUT: check it early, claim only folders segwork made, lock, sweep, swap atomically.

A run builds everything in ``.<name>.building-<pid>-<token>/`` beside OUT and swaps it in only on
success. Every folder segwork writes holds a small marker file (:data:`MARKER`, JSON) naming the
segwork version, the writing process and the entries it wrote; a folder segwork did not make (a
Desktop, a project folder) is never replaced or deleted. Two runs into the same OUT take turns
through ``.<name>.lock`` (``flock``, released by the kernel even when a run is killed), and a run
sweeps the build folders a killed run left beside OUT (they hold customer IDs).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segwork import __version__
from segwork.config import LOCK_TIMEOUT
from segwork.errors import SegworkInputError

MARKER = ".segwork-report"
# What a report folder written before the marker existed can hold (top-level entries only).
LEGACY_NAMES = frozenset(
    {
        "summary.json",
        "segments.csv",
        "segments.xlsx",
        "index.html",
        "artifacts",
        ".summary.json.tmp",
    }
)
PATH_MAX = 4096
NOTEBOOK_PAGE = re.compile(r"^\d\d_[A-Za-z0-9_]+\.(ipynb|html)$")

Say = Callable[[str], None]


def _quiet(_msg: str) -> None:
    """A progress callback that says nothing."""


# --------------------------------------------------------------------------- checking OUT early


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _name_max(folder: Path) -> int:
    """The longest file name the file system of ``folder`` accepts (255 when unknown)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _probe_writable(folder: Path) -> str | None:
    """Why segwork cannot create a folder in ``folder`` (None when it can); leaves nothing behind."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "is not writable"
    probe = folder / f".segwork-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError as exc:
        return f"is not writable ({exc.strerror})"
    probe.rmdir()
    return None


def _home() -> Path | None:
    """The user's home folder, resolved (None when it cannot be determined)."""
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


def check_out(text: str | os.PathLike[str], flag: str = "--out") -> Path:
    """OUT as an absolute path, or a one-line error: refused before any data is read.

    Refused: an empty or invalid path, a file, the current folder or one of its ancestors, the
    home folder, ``/``, and a place where no folder can be created. Nothing is created.
    """
    raw = os.fspath(text)
    if not raw.strip():
        raise SegworkInputError(f"{flag}: empty path; give a folder for the report")
    if "\0" in raw:
        raise SegworkInputError(f"{flag}: {raw!r} is not a valid path")
    try:
        out = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise SegworkInputError(f"{flag} {raw}: not a usable path ({exc})") from None
    cwd = Path.cwd().resolve()
    if out == Path(out.anchor):
        raise SegworkInputError(
            f"{flag} {raw}: is the root folder; give a new folder for the report"
        )
    if out == _home():
        raise SegworkInputError(
            f"{flag} {raw}: is your home folder; give a new folder for the report"
        )
    if out == cwd or out in cwd.parents:
        what = "the current folder" if out == cwd else f"an ancestor of the current folder {cwd}"
        raise SegworkInputError(f"{flag} {raw}: is {what}; give a new folder for the report")
    if out.is_file() or (os.path.lexists(out) and not out.is_dir()):
        raise SegworkInputError(
            f"{flag} {raw}: is a file, not a folder; give a folder for the report"
        )
    if len(os.fsencode(out)) >= PATH_MAX - 64:
        raise SegworkInputError(f"{flag} {raw}: the path is too long")
    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise SegworkInputError(f"{flag} {raw}: {base} is a file, not a folder")
    limit = _name_max(base)
    parts = out.relative_to(base).parts
    for i, part in enumerate(parts):
        room = 30 if i == len(parts) - 1 else 0  # OUT's name gets .<name>.building-<pid>-<token>
        if len(os.fsencode(part)) > limit - room:
            raise SegworkInputError(f"{flag} {raw}: the folder name '{part[:40]}...' is too long")
    why = _probe_writable(base)
    if why:
        raise SegworkInputError(f"{flag} {raw}: {base} {why}; give a folder you may write to")
    return out


def check_root(text: str | os.PathLike[str]) -> Path:
    """The reports root (where the default OUT goes) as an absolute path, checked like OUT."""
    root = Path(os.fspath(text)).expanduser().resolve()
    if os.path.lexists(root) and not root.is_dir():
        raise SegworkInputError(f"reports folder {text}: is a file, not a folder")
    base = _nearest_existing(root)
    if not base.is_dir():
        raise SegworkInputError(f"reports folder {text}: {base} is a file, not a folder")
    why = _probe_writable(base)
    if why:
        raise SegworkInputError(f"reports folder {text}: {base} {why}; give --out DIR")
    return root


# --------------------------------------------------------------------------- the marker


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker segwork left in ``folder`` (None when absent or not segwork's JSON)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "segwork_version" in data else None


def mark(folder: Path, files: bool = True, **extra: Any) -> Path:
    """Write the marker: segwork's version, this process and the entries ``folder`` holds now.

    With ``files=False`` (a folder still being built) no entry list is kept: all of it is segwork's.
    """
    data = {
        "segwork_version": __version__,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "written": datetime.now(UTC).isoformat(),
        **extra,
    }
    if files:
        data["files"] = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    tmp = folder / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MARKER)
    return folder / MARKER


def _is_legacy_report(folder: Path, names: list[str]) -> bool:
    """A report segwork wrote before the marker existed: only its known outputs, a real summary."""
    if not all(n in LEGACY_NAMES or NOTEBOOK_PAGE.match(n) for n in names):
        return False
    if "summary.json" not in names:
        return all(NOTEBOOK_PAGE.match(n) for n in names)  # an old .failed-<month>/ folder
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and "segwork_version" in summary and "ledger" in summary


def foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` segwork did not write (empty: segwork may replace the folder)."""
    names = sorted(p.name for p in folder.iterdir())
    marker = read_marker(folder)
    if marker is not None:
        written = marker.get("files")
        if written is None:  # a build folder: all of it is segwork's
            return []
        return [n for n in names if n != MARKER and n not in set(written)]
    if not names or _is_legacy_report(folder, names):
        return []
    return names


def claim(out: Path, flag: str = "--out") -> None:
    """Refuse an OUT that segwork did not make; an earlier report (marked or legacy) may be replaced."""
    if os.path.lexists(out) and not out.is_dir():
        raise SegworkInputError(
            f"{flag} {out}: is a file, not a folder; give a folder for the report"
        )
    if not out.is_dir():
        return
    foreign = foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise SegworkInputError(
            f"{flag} {out}: holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} "
            f"segwork did not write ({shown}); nothing was changed; give a new or empty folder"
        )


# --------------------------------------------------------------------------- removing, sweeping


def remove_own(folder: Path) -> None:
    """Delete a folder segwork made, its marker last (a half-deleted one stays recognisable)."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name == MARKER:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    with suppress(OSError):
        folder.rmdir()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a pid we may not signal counts as running)."""
    if pid <= 0:
        return True  # not a pid segwork wrote: treat as someone else's
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(out: Path) -> list[Path]:
    """Build and old folders of ``out`` whose segwork run is gone: safe to delete."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(building|old)-(\d+)(?:-[0-9a-f]+)?$")
    found = []
    if not out.parent.is_dir():
        return found
    for p in sorted(out.parent.iterdir()):
        m = pattern.match(p.name)
        if not m or p.is_symlink() or not p.is_dir():
            continue
        marker = read_marker(p)
        if marker and marker.get("host", socket.gethostname()) != socket.gethostname():
            continue  # written from another machine: its pid means nothing here
        if _alive(int(m.group(2))) or foreign_entries(p):
            continue
        found.append(p)
    return found


def _complete(folder: Path) -> bool:
    """Whether a marked folder still holds every entry its marker lists."""
    marker = read_marker(folder)
    files = marker.get("files") if marker else None
    return files is not None and all(os.path.lexists(folder / n) for n in files)


def sweep(out: Path, say: Say = _quiet) -> list[Path]:
    """Delete what killed runs left beside ``out`` (only segwork's own, only of dead processes).

    When OUT itself is missing because a run died between its two renames, the earlier report
    (``.<name>.old-*``) is put back instead of deleted.
    """
    removed = []
    for p in leftovers(out):
        if ".old-" in p.name and not os.path.lexists(out) and _complete(p):
            os.replace(p, out)
            say(f"restored {out} from {p.name}, left by a run that was killed")
            continue
        remove_own(p)
        removed.append(p)
    if removed:
        say(f"removed {len(removed)} folder(s) left beside {out} by killed runs")
    return removed


# --------------------------------------------------------------------------- the lock


def _lock_holder(path: Path) -> str:
    """The pid written into a lock file by the run holding it ('?' when unreadable)."""
    try:
        return path.read_text(encoding="utf-8").strip() or "?"
    except OSError:
        return "?"


@contextmanager
def out_lock(
    out: Path, say: Say = _quiet, timeout: float = LOCK_TIMEOUT, poll: float = 0.2
) -> Iterator[Path]:
    """Hold ``.<name>.lock`` beside ``out``: one run writes OUT at a time; others wait ``timeout``.

    ``flock`` ends with the process, so a killed run never leaves OUT locked. The lock file is
    removed on release; a waiter that locked a file someone removed meanwhile simply retries.
    """
    path = out.parent / f".{out.name}.lock"
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _lock_holder(path)
            if time.monotonic() >= deadline:
                raise SegworkInputError(
                    f"{out}: another segwork run (pid {holder}) is still writing it after "
                    f"{timeout:.0f}s; try again later or give another --out"
                ) from None
            if not waited:
                say(f"waiting for another segwork run writing {out} (pid {holder})")
                waited = True
            time.sleep(poll)
            continue
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we locked it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with suppress(OSError):
            path.unlink()
        os.close(fd)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created (outermost first)."""
    missing = []
    p = folder
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    return list(reversed(missing))


@contextmanager
def claimed(
    out: Path, say: Say = _quiet, timeout: float = LOCK_TIMEOUT, flag: str = "--out"
) -> Iterator[Path]:
    """Lock OUT, refuse it unless segwork may replace it, and sweep killed runs' leftovers.

    Folders created to hold the lock are removed again when nothing was published into them.
    """
    created = _make_parents(out.parent)
    try:
        with out_lock(out, say, timeout):
            claim(out, flag)
            sweep(out, say)
            yield out
    finally:
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                break


# --------------------------------------------------------------------------- atomic publish


def _build_dir(out: Path) -> Path:
    """A new empty ``.<name>.building-<pid>-<token>`` folder beside ``out`` (mode from the umask)."""
    while True:
        tmp = out.parent / f".{out.name}.building-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C for the two renames of a swap, so OUT is never left missing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if got and callable(previous):
            previous(signal.SIGINT, None)


def swap_in(tmp: Path, out: Path, flag: str = "--out") -> None:
    """Replace ``out`` (absent, empty or segwork's own) by ``tmp`` with two renames.

    Ctrl-C is held back until the earlier report is gone too, so an interrupted run leaves
    either the old OUT or the new one, never none and never a stray ``.old-`` folder.
    """
    old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    with _sigint_deferred():
        had = os.path.lexists(out)
        if had:
            claim(out, flag)
            os.replace(out, old)
            foreign = foreign_entries(old)
            if foreign:  # something appeared in OUT since it was claimed: put it back untouched
                os.replace(old, out)
                claim(out, flag)
        try:
            os.replace(tmp, out)
        except BaseException:
            if had:
                os.replace(old, out)
            raise
        if had:
            remove_own(old)


@contextmanager
def atomic_dir(out_dir: Path, flag: str = "--out", **marker: Any) -> Iterator[Path]:
    """Yield a fresh marked folder beside ``out_dir``; on success it replaces ``out_dir``.

    ``out_dir`` may be absent, empty, or a folder segwork wrote (see :func:`claim`); anything else
    is refused before and again during the swap. On an exception the build folder is removed and
    ``out_dir`` is untouched. ``marker`` adds fields to the marker (e.g. ``as_of``).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    claim(out_dir, flag)
    tmp = _build_dir(out_dir)
    try:
        mark(tmp, files=False, **marker)
        yield tmp
        mark(tmp, **marker)
        swap_in(tmp, out_dir, flag)
    except BaseException:
        remove_own(tmp)
        raise


def fresh_dir(folder: Path, say: Say = _quiet) -> Path:
    """An empty marked folder at ``folder`` (replacing it only if segwork made it), else beside it."""
    if os.path.lexists(folder):
        if folder.is_dir() and not folder.is_symlink() and not foreign_entries(folder):
            remove_own(folder)
        if os.path.lexists(folder):
            other = folder.with_name(f"{folder.name}-{os.getpid()}-{secrets.token_hex(2)}")
            say(f"{folder} holds files segwork did not write; using {other}")
            folder = other
    folder.mkdir(parents=True)
    mark(folder, files=False)
    return folder
