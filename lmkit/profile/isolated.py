"""Third-party native code in a child process: a crash or a hang there never ends the caller (notebook 08).

The workbook only compares against some native libraries (llama.cpp). A wheel built for another CPU can die on an
instruction this one lacks (SIGILL, exit code 132), or crash on a bad pointer (SIGSEGV); in the notebook's own
process that would end the kernel and lose every result measured before. :class:`ChildWorker` builds the object in
a child process (``multiprocessing``, spawn) and forwards method calls to it, each with a timeout; when the child
dies or hangs, the call raises :class:`ChildCrashed` with one line naming the signal and the likely fix, and the
caller carries on with what it has.
"""
from __future__ import annotations

import multiprocessing
import signal
from typing import Callable

from lmkit import checks

__all__ = ["ChildCrashed", "ChildError", "ChildWorker", "describe_exit"]


class ChildCrashed(RuntimeError):
    """The child process died (a signal, an exit) or did not answer in time; the message is one line."""


class ChildError(RuntimeError):
    """The child raised a Python exception; its type and message, in one line."""


def describe_exit(exitcode: int | None, hints: dict[int, str] | None = None) -> str:
    """``"SIGILL (exit code 132): <hint>"`` for a child killed by a signal, ``"exit code 3"`` for a plain exit."""
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        sig = -exitcode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = (hints or {}).get(sig)
        return f"{name} (exit code {128 + sig})" + (f": {hint}" if hint else "")
    return f"exit code {exitcode}"


def _serve(conn, factory: Callable, args: tuple) -> None:
    """The child's loop: build ``factory(*args)``, then answer ``(method, args)`` requests until ``None``."""
    try:
        obj = factory(*args)
    except Exception as exc:  # reported to the parent as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))
        return
    conn.send(("ok", None))
    while True:
        request = conn.recv()
        if request is None:
            return
        method, call_args = request
        try:
            conn.send(("ok", getattr(obj, method)(*call_args)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))


class ChildWorker:
    """An object built and used in a child process, so that its native code cannot end this one (notebook 08).

    ``ChildWorker(factory, *args, name="llama.cpp", timeout=120)`` starts a spawned child that calls
    ``factory(*args)`` (a module-level callable: it is pickled by name); ``worker.call("method", *args)`` runs
    ``obj.method(*args)`` there and returns its (picklable) result. Errors, all one line:

    - :class:`ChildCrashed`: the child died (``hints`` maps a signal number to the likely fix, printed with it) or
      gave no answer within ``timeout`` seconds (``start_timeout`` for building the object); the child is killed.
    - :class:`ChildError`: the object raised a Python exception; the child keeps serving.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, factory: Callable, *args, name: str = "child process", timeout: float = 120.0,
                 start_timeout: float = 300.0, hints: dict[int, str] | None = None):
        timeout = checks.real("timeout", timeout, low=0, low_open=True, fix="a positive number of seconds")
        start_timeout = checks.real("start_timeout", start_timeout, low=0, low_open=True,
                                    fix="a positive number of seconds")
        self.name, self.timeout, self.hints = name, timeout, hints or {}
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child_conn, factory, args), daemon=True, name=name)
        self._proc.start()
        child_conn.close()
        self.crashed: str | None = None
        self._answer(start_timeout, "starting")

    @property
    def alive(self) -> bool:
        return self.crashed is None and self._proc.is_alive()

    def _fail(self, what: str) -> ChildCrashed:
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(timeout=5)
        self.crashed = f"{self.name} {what}"
        return ChildCrashed(self.crashed)

    def _answer(self, timeout: float, doing: str):
        died = f"ended its process while {doing}"
        try:
            if not self._conn.poll(timeout):
                if self._proc.is_alive():
                    raise self._fail(f"gave no answer within {timeout:g} s while {doing} and was stopped: "
                                     "pass a larger timeout if the machine is slow")
                raise self._fail(f"{died}: {describe_exit(self._exitcode(), self.hints)}")
            status, value = self._conn.recv()
        except (EOFError, OSError):  # the child's end closed: it died
            raise self._fail(f"{died}: {describe_exit(self._exitcode(), self.hints)}") from None
        if status == "error":
            if doing == "starting":
                self._proc.join(timeout=5)
                self.crashed = f"{self.name} could not start: {value}"
            raise ChildError(f"{self.name}: {value}")
        return value

    def _exitcode(self) -> int | None:
        self._proc.join(timeout=5)
        return self._proc.exitcode

    def call(self, method: str, *args, timeout: float | None = None):
        """``obj.method(*args)`` in the child; its result, or :class:`ChildCrashed` / :class:`ChildError`."""
        if self.crashed is not None:
            raise ChildCrashed(f"{self.crashed} (earlier); start a new worker")
        try:
            self._conn.send((method, args))
        except (BrokenPipeError, OSError):
            raise self._fail(f"ended its process: {describe_exit(self._exitcode(), self.hints)}") from None
        return self._answer(timeout or self.timeout, f"running {method}")

    def close(self) -> None:
        """Stop the child (politely, then by force)."""
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout=5)
        self._conn.close()

    def __enter__(self) -> "ChildWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
