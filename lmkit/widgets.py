"""Interactive generation: the streaming playground and a small chat (notebook 04).

Both widgets run :func:`lmkit.generate.stream` in a background thread, so the kernel stays free to handle
button clicks while tokens arrive: Stop works in a real browser. Tests (and scripts) click Generate, then call
``.wait()`` to join the thread and read ``.output.outputs`` deterministically.

Everything is drawn with plain HTML spans with inline styles and PNG images: no JavaScript, no CDN, so it renders
in JupyterLab, Colab and VS Code alike.
"""
from __future__ import annotations

import base64
import html
import io
import threading
import time

import ipywidgets as W

from lmkit import generate as G

EOS_MARK = "⟨eos⟩"


# ----------------------------------------------------------------------------------------------- colours, HTML
def prob_color(p: float) -> str:
    """Background colour for a token of probability ``p``: red (unlikely) through yellow to green (notebook 04)."""
    p = min(max(float(p), 0.0), 1.0)
    return f"hsl({120 * p:.0f}, 75%, 82%)"


def tokens_html(steps, color_by: str = "raw", prompt: str = "") -> str:
    """The prompt in grey, then each generated token as a span coloured by its probability (notebook 04)."""
    spans = []
    for s in steps:
        p = s.raw_prob if color_by == "raw" else s.prob
        text = EOS_MARK if s.is_eos else s.text
        tip = f"step {s.index}: {s.token!r} id {s.id} · p={s.prob:.3f} after processing, {s.raw_prob:.3f} raw"
        spans.append(f'<span title="{html.escape(tip)}" style="background:{prob_color(p)};border-radius:3px;'
                     f'padding:0 1px;margin:0 0.5px">{html.escape(text)}</span>')
    legend = "".join(f'<span style="background:{prob_color(p)};padding:0 6px">{p:.1f}</span>'
                     for p in (0.0, 0.25, 0.5, 0.75, 1.0))
    return (f'<div style="font-family:monospace;white-space:pre-wrap;line-height:1.7">'
            f'<span style="color:#888">{html.escape(prompt)}</span>{"".join(spans)}</div>'
            f'<div style="font-size:11px;color:#666;margin-top:4px">colour = {color_by} probability of the '
            f'chosen token: {legend} (hover a token for both)</div>')


def _display_data(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def alternatives_png(step, title: str = "") -> bytes:
    """A bar chart of one step's alternatives, raw vs processed probability, as PNG bytes (notebook 04).

    Drawn on a bare ``Figure`` (no pyplot), so that it is safe from the generation thread.
    """
    from matplotlib.figure import Figure

    alts = step.alternatives
    fig = Figure(figsize=(6.5, 2.8), dpi=90)
    ax = fig.subplots()
    x = range(len(alts))
    ax.bar([i - 0.2 for i in x], [a.raw_prob for a in alts], width=0.4, color="#9AA5B1", label="raw")
    ax.bar([i + 0.2 for i in x], [a.prob for a in alts], width=0.4, color="#4C72B0", label="after processors")
    chosen = [i for i, a in enumerate(alts) if a.id == step.id]
    for i in chosen:
        ax.axvspan(i - 0.45, i + 0.45, color="#F2C14E", alpha=0.35, label="chosen", zorder=0)
    ax.set_xticks(list(x), [repr(a.text) for a in alts], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    ax.set_xlabel("candidate next token")
    ax.set_title(title or f"step {step.index}: chose {step.text!r} (p={step.prob:.2f}, raw {step.raw_prob:.2f})",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _message(text: str, color: str = "#B00020") -> str:
    return f'<span style="color:{color}">{html.escape(text)}</span>'


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return first if isinstance(exc, ValueError) and first else f"{type(exc).__name__}: {first}"


# ----------------------------------------------------------------------------------------------- shared machinery
class _Streaming:
    """Runs one :func:`lmkit.generate.stream` at a time in a background thread; Stop sets an event."""

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
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self, _=None) -> None:
        """Ask the running generation to stop after the current token."""
        self._stop.set()

    def show_error(self, message: str) -> None:
        self.error = message
        self.status.value = _message(message)

    def _start(self, prompt, settings: dict) -> bool:
        """Validate and start streaming in the background; on a bad setting show the message and return False."""
        if self.running:
            return False
        self._stop.clear()
        self.error = None
        try:
            steps = G.stream(self.lm, prompt, stop=self._stop, **settings)
        except ValueError as exc:
            self.show_error(_one_line(exc))
            return False
        self.steps = []
        self._set_running(True)
        self._thread = threading.Thread(target=self._consume, args=(steps,), daemon=True)
        self._thread.start()
        return True

    def _consume(self, steps) -> None:
        last, reason = 0.0, "max_new_tokens reached"
        try:
            for step in steps:
                self.steps.append(step)
                if step.is_eos:
                    reason = "end of sequence (EOS)"
                if time.perf_counter() - last > self.refresh_s:
                    self._redraw(running=True)
                    last = time.perf_counter()
            if self._stop.is_set():
                reason = "stopped"
            self._redraw(running=False)
            self._finished(reason)
        except Exception as exc:  # noqa: BLE001 - a widget shows one line, never a traceback
            self.show_error(_one_line(exc))
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
        self.status.value = _message(f"{self._speed()} · {reason}", "#333")

    def _set_running(self, running: bool) -> None:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ----------------------------------------------------------------------------------------------- the playground
class Playground(_Streaming):
    """The streaming generation playground (notebook 04); build it with :func:`playground`.

    Controls (set ``.value``, call ``.click()``): ``prompt, sample, temperature, top_k, top_p, max_new_tokens,
    repetition_penalty, seed, chat, color_by, generate_button, stop_button, step``. Read ``output`` (the coloured
    tokens), ``alternatives`` (the chosen step's bar chart), ``status`` (tokens/s, why it stopped, or the error).
    """

    def __init__(self, lm, prompt: str = "The best way to learn a language is", max_new_tokens: int = 40):
        super().__init__(lm)
        slider = dict(continuous_update=False, style={"description_width": "140px"},
                      layout=W.Layout(width="380px"))
        self.prompt = W.Textarea(prompt, description="prompt", layout=W.Layout(width="98%", height="70px"))
        self.sample = W.ToggleButton(True, description="sample", tooltip="on: sample; off: greedy decoding")
        self.chat = W.ToggleButton(False, description="chat", tooltip="wrap the prompt in the chat template")
        self.temperature = W.FloatSlider(0.7, min=0.0, max=2.0, step=0.05, description="temperature", **slider)
        self.top_k = W.IntSlider(50, min=0, max=200, description="top_k (0 = off)", **slider)
        self.top_p = W.FloatSlider(0.95, min=0.0, max=1.0, step=0.01, description="top_p (1 = off)", **slider)
        self.max_new_tokens = W.IntSlider(max_new_tokens, min=1, max=256, description="max_new_tokens", **slider)
        self.repetition_penalty = W.FloatSlider(1.0, min=0.5, max=2.0, step=0.05,
                                                description="repetition_penalty", **slider)
        self.seed = W.IntText(0, description="seed", style={"description_width": "140px"},
                              layout=W.Layout(width="240px"))
        self.color_by = W.ToggleButtons(options=["raw", "processed"], value="raw", description="colour by",
                                        style={"button_width": "95px"})
        self.generate_button = W.Button(description="Generate", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.output = W.Output(layout=W.Layout(border="1px solid #ddd", padding="6px", min_height="60px"))
        self.step = W.IntSlider(0, min=0, max=0, description="step", disabled=True, continuous_update=False,
                                style={"description_width": "40px"}, layout=W.Layout(width="98%"))
        self.alternatives = W.Output()

        self.generate_button.on_click(self.run)
        self.stop_button.on_click(self.stop)
        self.sample.observe(self._sync_sampling, "value")
        self._following = False
        self.step.observe(lambda _: self._following or self._show_step(), "value")
        self.color_by.observe(lambda _: self._redraw(running=self.running), "value")
        self._sync_sampling()
        controls = W.HBox([W.VBox([self.temperature, self.top_k, self.top_p]),
                           W.VBox([self.max_new_tokens, self.repetition_penalty, self.seed])])
        buttons = W.HBox([self.generate_button, self.stop_button, self.sample, self.chat, self.color_by])
        self.widget = W.VBox([self.prompt, controls, buttons, self.status, self.output,
                              W.HTML("<b>Alternatives at one step</b> (move the slider):"), self.step,
                              self.alternatives])

    def settings(self) -> dict:
        """The controls' values as :func:`lmkit.generate.stream` settings."""
        s = dict(max_new_tokens=self.max_new_tokens.value, do_sample=self.sample.value,
                 repetition_penalty=self.repetition_penalty.value, chat=self.chat.value)
        if self.sample.value:
            s.update(temperature=self.temperature.value, top_k=self.top_k.value, top_p=self.top_p.value,
                     seed=self.seed.value)
        return s

    def run(self, _=None) -> bool:
        """What Generate does: validate, then stream in the background. False if a setting was rejected."""
        if self.running:
            return False
        self.output.outputs = ()
        self.alternatives.outputs = ()
        self.status.value = _message("generating…", "#333")
        return self._start(self.prompt.value, self.settings())

    @property
    def text(self) -> str:
        """The generated text so far (special tokens included)."""
        return "".join(s.text for s in self.steps)

    def _sync_sampling(self, _=None) -> None:
        for w in (self.temperature, self.top_k, self.top_p, self.seed):
            w.disabled = not self.sample.value

    def _set_running(self, running: bool) -> None:
        self.generate_button.disabled = running
        self.stop_button.disabled = not running

    def _redraw(self, running: bool) -> None:
        steps = list(self.steps)
        prompt = "" if self.chat.value else self.prompt.value
        plain = prompt + "".join(EOS_MARK if s.is_eos else s.text for s in steps)
        self.output.outputs = (_display_data({"text/html": tokens_html(steps, self.color_by.value, prompt),
                                              "text/plain": plain}),)
        if steps:
            self.status.value = _message(f"{self._speed()}{' · generating…' if running else ''}", "#333")
            follow = self.step.value == self.step.max  # the selector follows the newest token unless moved
            self.step.max = len(steps) - 1
            self.step.disabled = False
            if follow and running:
                self._following = True  # no bar chart per token while streaming: it would slow generation
                self.step.value = self.step.max
                self._following = False
        if not running:
            self._show_step()

    def _show_step(self) -> None:
        if not self.steps or self.step.value >= len(self.steps):
            return
        step = self.steps[self.step.value]
        rows = "\n".join(f"{a.text!r:>16}  p={a.prob:.3f}  raw={a.raw_prob:.3f}{'  <- chosen' if a.id == step.id else ''}"
                         for a in step.alternatives)
        png = base64.b64encode(alternatives_png(step)).decode()
        self.alternatives.outputs = (_display_data({"image/png": png, "text/plain": f"step {step.index}\n{rows}"}),)


def playground(lm, prompt: str = "The best way to learn a language is", max_new_tokens: int = 40) -> Playground:
    """The streaming playground widget for ``lm`` (notebook 04): display it, move the sliders, click Generate."""
    return Playground(lm, prompt, max_new_tokens)


# ----------------------------------------------------------------------------------------------- chat
class Chat(_Streaming):
    """A small chat through the tokenizer's chat template (notebook 04); build it with :func:`chat`.

    ``message`` + ``send_button`` add a user turn and stream the reply; ``reset_button`` clears ``messages``.
    """

    def __init__(self, lm, system: str | None = None, max_new_tokens: int = 80):
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
        self.steps = []
        self._redraw(running=False)
        super()._finished(reason)

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
        self.output.outputs = (_display_data({"text/html": "".join(bubbles) or "<i>say hello</i>",
                                              "text/plain": "\n".join(plain)}),)
        if running and self.steps:
            self.status.value = _message(f"{self._speed()} · generating…", "#333")


def chat(lm, system: str | None = None, max_new_tokens: int = 80) -> Chat:
    """A simple chat widget over the model's chat template (notebook 04)."""
    return Chat(lm, system, max_new_tokens)
