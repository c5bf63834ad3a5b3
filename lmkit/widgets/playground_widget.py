"""The streaming generation playground: tokens coloured by probability, the alternatives at each step (notebook 06)."""
from __future__ import annotations

import html
import io

import ipywidgets as W

from lmkit import checks
from lmkit.widgets.base import display_data, png_display_data
from lmkit.widgets.streaming import StreamingWidget

__all__ = ["EOS_MARK", "Playground", "alternatives_png", "playground", "prob_color", "tokens_html"]

EOS_MARK = "⟨eos⟩"
SLIDER_MAX_NEW_TOKENS = 256
"""The max_new_tokens slider's top, unless the playground is built with a larger max_new_tokens."""


def prob_color(p: float) -> str:
    """Background colour for a token of probability ``p``: red (unlikely) through yellow to green (notebook 06)."""
    p = min(max(float(p), 0.0), 1.0)
    return f"hsl({120 * p:.0f}, 75%, 82%)"


def tokens_html(steps, color_by: str = "raw", prompt: str = "") -> str:
    """The prompt in grey, then each generated token as a span coloured by its probability (notebook 06)."""
    checks.one_of("color_by", color_by, ("raw", "processed"))
    spans = []
    for s in steps:
        p = s.raw_prob if color_by == "raw" else s.prob
        text = EOS_MARK if s.is_eos else s.text
        tip = f"step {s.index}: {s.token!r} id {s.id} · p={s.prob:.3f} after processing, {s.raw_prob:.3f} raw"
        spans.append(f'<span title="{html.escape(tip)}" style="background:{prob_color(p)};border-radius:3px;'
                     f'padding:0 1px;margin:0 0.5px">{html.escape(text)}</span>')
    legend = "".join(f'<span style="background:{prob_color(p)};padding:0 6px">{p:g}</span>'
                     for p in (0.0, 0.25, 0.5, 0.75, 1.0))
    return (f'<div style="font-family:monospace;white-space:pre-wrap;line-height:1.7">'
            f'<span style="color:#888">{html.escape(prompt)}</span>{"".join(spans)}</div>'
            f'<div style="font-size:11px;color:#666;margin-top:4px">colour = {color_by} probability of the '
            f'chosen token: {legend} (hover a token for both)</div>')


def alternatives_png(step, title: str = "") -> bytes:
    """A bar chart of one step's alternatives, raw vs processed probability, as PNG bytes (notebook 06).

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


class Playground(StreamingWidget):
    """The streaming generation playground (notebook 06); build it with :func:`playground`.

    Controls (set ``.value``, call ``.click()``): ``prompt, sample, temperature, top_k, top_p, max_new_tokens,
    repetition_penalty, seed, chat, json, color_by, generate_button, stop_button, step``. With ``json`` on, every
    step is masked to the grammar of ``json_schema`` (any JSON object by default; notebook 07), so the text parses
    once the object is closed. Read what it shows with
    ``output_text`` (prompt and generated text), ``output_html`` (the coloured tokens), ``output_image`` (the
    chosen step's bar chart, as PNG bytes), ``alternatives_text`` (that step's table) and ``status_text``
    (tokens/s and why it stopped, or the one-line error); ``steps`` holds the stream's steps, ``text`` the
    generated text.
    """

    title = "generation playground"

    def __init__(self, lm, prompt: str = "The best way to learn a language is", max_new_tokens: int = 40):
        checks.text("prompt", prompt, blank_ok=True, fix="pass the text to continue (it can be edited later)")
        max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1,
                                        fix="pass how many tokens to generate, such as 40")
        super().__init__(lm)
        slider = dict(continuous_update=False, style={"description_width": "140px"},
                      layout=W.Layout(width="380px"))
        self.prompt = W.Textarea(prompt, description="prompt", layout=W.Layout(width="98%", height="70px"))
        self.sample = W.ToggleButton(True, description="sample", tooltip="on: sample; off: greedy decoding")
        self.chat = W.ToggleButton(False, description="chat", tooltip="wrap the prompt in the chat template")
        self.json = W.ToggleButton(False, description="JSON", tooltip="constrain the output to json_schema")
        self.json_schema: dict = {"type": "object"}
        self.temperature = W.FloatSlider(0.7, min=0.0, max=2.0, step=0.05, description="temperature", **slider)
        self.top_k = W.IntSlider(50, min=0, max=200, description="top_k (0 = off)", **slider)
        self.top_p = W.FloatSlider(0.95, min=0.0, max=1.0, step=0.01, description="top_p (1 = off)", **slider)
        # the slider goes to 256, or further when asked for more (a JSON object can take a few hundred tokens)
        self.max_new_tokens = W.IntSlider(max_new_tokens, min=1, max=max(SLIDER_MAX_NEW_TOKENS, max_new_tokens),
                                          description="max_new_tokens", **slider)
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
        buttons = W.HBox([self.generate_button, self.stop_button, self.sample, self.chat, self.json, self.color_by])
        self.widget = W.VBox([self.prompt, controls, buttons, self.status, self.output,
                              W.HTML("<b>Alternatives at one step</b> (move the slider):"), self.step,
                              self.alternatives])

    def settings(self) -> dict:
        """The controls' values as :func:`lmkit.generate.stream` settings."""
        s = dict(max_new_tokens=self.max_new_tokens.value, do_sample=self.sample.value,
                 repetition_penalty=self.repetition_penalty.value, chat=self.chat.value)
        if self.json.value:
            s["json_schema"] = self.json_schema
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
        self.show_message("generating…")
        return self._start(self.prompt.value, self.settings())

    @property
    def text(self) -> str:
        """The generated text so far (special tokens included)."""
        return "".join(s.text for s in self.steps)

    @property
    def alternatives_text(self) -> str:
        """The chosen step's alternatives as a plain-text table ("" before a generation)."""
        return "".join(str(o.get("data", {}).get("text/plain", "")) for o in self.alternatives.outputs)

    def _outputs(self) -> list:
        return [self.output, self.alternatives]

    def summary(self) -> str:
        """Plain text of the playground now: its settings, status line, the prompt and the generated text."""
        s = self.settings()
        mode = ("sampling: " + ", ".join(f"{k} {s[k]}" for k in ("temperature", "top_k", "top_p", "seed"))
                if s["do_sample"] else "greedy")
        lines = [f"{self.title} ({mode}; max_new_tokens {s['max_new_tokens']}, repetition_penalty "
                 f"{s['repetition_penalty']}{', chat template' if s['chat'] else ''})"]
        if self.status_text:
            lines.append(self.status_text)
        lines.append(self.output_text or f"prompt: {self.prompt.value}")
        return "\n".join(lines)

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
        self.output.outputs = (display_data({"text/html": tokens_html(steps, self.color_by.value, prompt),
                                              "text/plain": plain}),)
        if steps:
            self.show_message(f"{self._speed()}{' · generating…' if running else ''}")
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
        self.alternatives.outputs = (png_display_data(alternatives_png(step), f"step {step.index}\n{rows}"),)


def playground(lm, prompt: str = "The best way to learn a language is", max_new_tokens: int = 40) -> Playground:
    """The streaming playground widget for ``lm`` (notebook 06): display it, move the sliders, click Generate.

    The ``max_new_tokens`` slider goes from 1 to 256, or to ``max_new_tokens`` when that is larger (a constrained
    JSON object may need a few hundred tokens). Raises :class:`lmkit.checks.CheckError` for a ``max_new_tokens``
    that is not an integer >= 1 or a ``prompt`` that is not a string."""
    return Playground(lm, prompt, max_new_tokens)
