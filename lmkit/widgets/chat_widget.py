"""A small chat through the tokenizer's chat template, streamed (notebook 06)."""
from __future__ import annotations

import html

import ipywidgets as W

from lmkit import checks
from lmkit.widgets.base import display_data
from lmkit.widgets.streaming import StreamingWidget

__all__ = ["Chat", "chat"]


class Chat(StreamingWidget):
    """A small chat through the tokenizer's chat template (notebook 06); build it with :func:`chat`.

    ``message`` + ``send_button`` add a user turn and stream the reply; ``reset_button`` clears ``messages``.
    ``output_text`` is the conversation as ``you: …`` / ``model: …`` lines, ``status_text`` the status line.
    """

    title = "chat"

    def __init__(self, lm, system: str | None = None, max_new_tokens: int = 80):
        if system is not None:
            checks.text("system", system, fix="pass the system prompt, or None for none")
        max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, high=512,
                                        fix="the slider goes from 1 to 512")
        super().__init__(lm)
        self.messages: list[dict] = [{"role": "system", "content": system}] if system else []
        self.system = system
        self.message = W.Text(placeholder="your message, then Send", layout=W.Layout(width="70%"))
        self.send_button = W.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.reset_button = W.Button(description="Reset", icon="refresh")
        self.sample = W.ToggleButton(False, description="sample")
        self.temperature = W.FloatSlider(0.7, min=0.0, max=2.0, step=0.05, description="temperature")
        self.max_new_tokens = W.IntSlider(max_new_tokens, min=1, max=512, description="max tokens")
        self.output = W.Output(layout=W.Layout(border="1px solid #ddd", padding="6px", min_height="60px"))
        self.send_button.on_click(self.send)
        self.stop_button.on_click(self.stop)
        self.reset_button.on_click(self.reset)
        self.widget = W.VBox([self.output, W.HBox([self.message, self.send_button, self.stop_button,
                                                   self.reset_button]),
                              W.HBox([self.sample, self.temperature, self.max_new_tokens]), self.status])
        self._redraw(running=False)

    def send(self, _=None) -> bool:
        """Add ``message`` as a user turn and stream the assistant's reply. False if nothing was started."""
        text = self.message.value.strip()
        if not text:
            self.show_error("empty message: type something, then Send")
            return False
        settings = dict(chat=True, max_new_tokens=self.max_new_tokens.value, do_sample=self.sample.value)
        if self.sample.value:
            settings["temperature"] = self.temperature.value
        if not self._start(self.messages + [{"role": "user", "content": text}], settings):
            return False
        self.messages.append({"role": "user", "content": text})
        self.message.value = ""
        return True

    def reset(self, _=None) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.stop()
        self.wait(5)
        self.messages = [{"role": "system", "content": self.system}] if self.system else []
        self.steps = []
        self.status.value = ""
        self._redraw(running=False)

    def _finished(self, reason: str) -> None:
        reply = self.lm.tokenizer.decode([s.id for s in self.steps], skip_special_tokens=True).strip()
        self.messages.append({"role": "assistant", "content": reply})
        speed = self._speed()  # of this reply, before its steps are cleared
        self.steps = []
        self._redraw(running=False)
        self.show_message(f"{speed} · {reason}")

    def _set_running(self, running: bool) -> None:
        self.send_button.disabled = running
        self.stop_button.disabled = not running

    def _redraw(self, running: bool) -> None:
        turns = list(self.messages)
        if running or self.steps:
            turns.append({"role": "assistant", "content": "".join(s.text for s in self.steps if not s.is_eos) + "▌"})
        bubbles, plain = [], []
        for m in turns:
            if m["role"] == "system":
                continue
            user = m["role"] == "user"
            style = ("background:#E3F2FD;margin-left:20%" if user else "background:#F1F1F1;margin-right:20%")
            bubbles.append(f'<div style="{style};border-radius:8px;padding:4px 8px;margin:3px 0;'
                           f'white-space:pre-wrap"><b>{"you" if user else "model"}:</b> '
                           f'{html.escape(m["content"])}</div>')
            plain.append(f'{"you" if user else "model"}: {m["content"]}')
        self.output.outputs = (display_data({"text/html": "".join(bubbles) or "<i>say hello</i>",
                                              "text/plain": "\n".join(plain)}),)
        if running and self.steps:
            self.show_message(f"{self._speed()} · generating…")


def chat(lm, system: str | None = None, max_new_tokens: int = 80) -> Chat:
    """A simple chat widget over the model's chat template (notebook 06)."""
    return Chat(lm, system, max_new_tokens)
