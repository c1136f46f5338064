"""report/session.py: the warm notebook processes are let go between batches and started again."""

from __future__ import annotations

import sys
import time

import segwork.report.execute as ex
import segwork.report.session as session_mod
from segwork.config import RunParams
from tests.test_execute import tiny_notebooks

#: A stand-in for the warm child: it only waits on its input, as the real one does when idle.
IDLE_CHILD = (sys.executable, "-c", "import sys; sys.stdin.read()")


def _session(tmp_path, monkeypatch) -> session_mod.ReportSession:  # noqa: ANN001
    """A session over one tiny notebook whose runs only borrow a child and give it back."""

    class Quick(ex.Children):
        def __init__(self, logs, warm) -> None:  # noqa: ANN001
            super().__init__(logs, warm, command=IDLE_CHILD)

    def borrow(src, build, kernel, parameters, lang, say, stop, limits, children, logs):  # noqa: ANN001, ANN202
        children.give_back(children.take())

    monkeypatch.setattr(session_mod, "Children", Quick)
    monkeypatch.setattr(session_mod, "_run_one", borrow)
    folder = tiny_notebooks(tmp_path / "nbs", "print(1)")
    params = RunParams(notebooks_dir=str(folder), workers=1)
    return session_mod.ReportSession(tmp_path / "build", params, print, tmp_path / "failed")


def _wait(condition, seconds: float = 10.0) -> bool:  # noqa: ANN001
    """True once ``condition()`` holds (the batch's callback runs on the pool's thread)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_release_after_ends_the_idle_children_once_the_batch_is_done(tmp_path, monkeypatch):
    s = _session(tmp_path, monkeypatch)
    [child] = s.children.idle  # started at once, so its imports overlap the caller's work
    s.submit(early=True, release_after=True)
    for f in s.futures:
        f.result()
    assert _wait(lambda: not s.children.idle and child.proc.poll() is not None)
    s.warm()  # before the next batch: a fresh child
    [fresh] = s.children.idle
    assert fresh is not child and fresh.proc.poll() is None
    s.cancel()
    assert fresh.proc.poll() is not None


def test_without_release_after_the_child_stays_warm_for_the_next_batch(tmp_path, monkeypatch):
    s = _session(tmp_path, monkeypatch)
    [child] = s.children.idle
    s.submit(early=True)
    for f in s.futures:
        f.result()
    time.sleep(0.2)
    assert s.children.idle == [child] and child.proc.poll() is None
    s.warm()  # nothing to add: one is warm already
    assert s.children.idle == [child]
    s.cancel()
