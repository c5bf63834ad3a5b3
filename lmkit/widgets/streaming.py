"""Generation in a background thread, shared by the playground and the chat (notebook 06)."""
from __future__ import annotations

import threading
import time

import ipywidgets as W

from lmkit import checks
from lmkit import generate as G
from lmkit.widgets.base import Widget, one_line

__all__ = ["StreamingWidget"]


REASONS = {"eos": "end of sequence (EOS)", "length": "max_new_tokens reached", "context": "end of the context",
           "grammar": "the output is complete", "stop": "stopped"}
"""The status line's words for each :data:`lmkit.decoding.loop.FINISH_REASONS` value of the last step."""


class StreamingWidget(Widget):
    """A widget that runs one :func:`lmkit.generate.stream` at a time in a background thread; Stop sets an event.

    The kernel stays free to handle clicks while tokens arrive, so Stop works in a real browser. Tests and
    scripts click, then call :meth:`wait` to join the thread before reading what is shown.
    """

    refresh_s = 0.15  # redraw at most this often while streaming (each token still arrives in order)

    def __init__(self, lm):
        self.lm = lm
        self.steps: list = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = W.HTML(layout=W.Layout(min_height="1.6em"))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current generation ends (for tests and scripts); True if it has ended."""
        if timeout is not None:
            timeout = checks.real("timeout", timeout, low=0, fix="seconds to wait, or None to wait until it ends")
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self, _=None) -> None:
        """Ask the running generation to stop after the current token."""
        self._stop.set()

    def show_error(self, message: str) -> None:
        self.error = message
        self.show_message(message, error=True)

    def _start(self, prompt, settings: dict) -> bool:
        """Validate and start streaming in the background; on a bad setting show the message and return False."""
        if self.running:
            return False
        self._stop.clear()
        self.error = None
        try:
            steps = G.stream(self.lm, prompt, stop=self._stop, **settings)
        except Exception as exc:  # noqa: BLE001 - a widget shows one line, never a traceback
            self.show_error(one_line(exc))
            return False
        self.steps = []
        self._set_running(True)
        self._thread = threading.Thread(target=self._consume, args=(steps,), daemon=True)
        self._thread.start()
        return True

    def _consume(self, steps) -> None:
        last, reason = 0.0, "stopped"  # a stream ends without a reason only when Stop ended it
        try:
            for step in steps:
                self.steps.append(step)
                if step.finish_reason is not None:
                    reason = REASONS.get(step.finish_reason, step.finish_reason)
                if time.perf_counter() - last > self.refresh_s:
                    self._redraw(running=True)
                    last = time.perf_counter()
            self._redraw(running=False)
            self._finished(reason)
        except Exception as exc:  # noqa: BLE001 - a widget shows one line, never a traceback
            self.show_error(one_line(exc))
        finally:
            self._set_running(False)

    def _speed(self) -> str:
        if not self.steps:
            return "0 tokens"
        last = self.steps[-1]
        return f"{len(self.steps)} tokens · {last.tokens_per_s:.1f} tokens/s"

    def _redraw(self, running: bool) -> None:
        raise NotImplementedError

    def _finished(self, reason: str) -> None:
        self.show_message(f"{self._speed()} · {reason}")

    def _set_running(self, running: bool) -> None:
        raise NotImplementedError
