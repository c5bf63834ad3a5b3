"""lmkit.widgets driven headless: set values, click, wait, read what the widget shows."""
from __future__ import annotations

import base64
import time

import pytest

from lmkit import generate as G
from lmkit import widgets

PROMPT = "the cat sat on the"


def shown(out) -> dict:
    """The one display_data an Output widget holds (its mime bundle)."""
    assert len(out.outputs) == 1
    return out.outputs[0]["data"]


@pytest.fixture
def pg(tiny_lm):
    p = widgets.playground(tiny_lm, prompt=PROMPT, max_new_tokens=12)
    yield p
    p.stop()
    p.wait(30)


def test_greedy_click_streams_the_same_tokens_as_stream(pg, tiny_lm):
    pg.sample.value = False
    pg.generate_button.click()
    assert pg.wait(60)
    expected = list(G.stream(tiny_lm, PROMPT, max_new_tokens=12))
    assert [s.id for s in pg.steps] == [s.id for s in expected]
    data = shown(pg.output)
    assert data["text/plain"] == PROMPT + "".join(widgets.EOS_MARK if s.is_eos else s.text for s in expected)
    html = data["text/html"]
    assert html.count("<span title=") == len(expected)
    assert widgets.prob_color(expected[0].raw_prob) in html  # coloured by the (raw) probability
    assert f"p={expected[0].prob:.3f}" in html
    assert "tokens/s" in pg.status.value and pg.error is None
    assert not pg.generate_button.disabled and pg.stop_button.disabled


def test_seeded_sampling_settings_reach_the_stream(pg, tiny_lm):
    pg.sample.value, pg.temperature.value, pg.top_k.value, pg.top_p.value = True, 1.3, 10, 0.9
    pg.seed.value, pg.repetition_penalty.value = 7, 1.2
    pg.generate_button.click()
    pg.wait(60)
    expected = G.reference(tiny_lm, PROMPT, max_new_tokens=12, do_sample=True, temperature=1.3, top_k=10,
                           top_p=0.9, seed=7, repetition_penalty=1.2)
    assert [s.id for s in pg.steps] == expected


def test_step_selector_shows_alternatives_chart(pg):
    pg.sample.value = False
    pg.generate_button.click()
    pg.wait(60)
    assert not pg.step.disabled and pg.step.max == len(pg.steps) - 1
    pg.step.value = 2
    data = shown(pg.alternatives)
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    step = pg.steps[2]
    assert data["text/plain"].startswith("step 2")
    assert "<- chosen" in data["text/plain"] and f"p={step.alternatives[0].prob:.3f}" in data["text/plain"]


def test_color_by_processed_changes_the_colours(pg):
    pg.top_k.value, pg.temperature.value = 3, 0.5  # processed probabilities differ from raw ones
    pg.generate_button.click()
    pg.wait(60)
    raw_html = shown(pg.output)["text/html"]
    pg.color_by.value = "processed"
    proc_html = shown(pg.output)["text/html"]
    assert raw_html != proc_html and widgets.prob_color(pg.steps[0].prob) in proc_html


@pytest.mark.parametrize("control,value,message", [
    ("temperature", 0.0, "temperature=0.0 must be a number > 0 when sampling"),
    ("top_p", 0.0, "top_p=0.0 must be in (0, 1]"),
    ("seed", -1, "seed=-1"),
    ("prompt", "   ", "empty prompt"),
])
def test_bad_settings_show_a_message_not_a_traceback(pg, control, value, message):
    getattr(pg, control).value = value
    pg.generate_button.click()
    assert pg.wait(5) and pg.steps == []
    assert message in pg.error and message.split(" must")[0] in pg.status.value
    assert "Traceback" not in pg.status.value and pg.output.outputs == ()


def test_errors_inside_the_thread_become_a_message(pg, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("out of memory\nmore lines")

    monkeypatch.setattr(pg.lm.model, "forward", broken)
    pg.generate_button.click()
    pg.wait(30)
    assert pg.error == "RuntimeError: out of memory" and "Traceback" not in pg.status.value
    assert not pg.generate_button.disabled


def test_stop_mid_stream(tiny_lm, monkeypatch):
    pg = widgets.playground(tiny_lm, prompt=PROMPT, max_new_tokens=200)
    pg.sample.value = False
    tiny_lm.model.generation_config.eos_token_id = None  # only Stop or the limit can end this run
    forward = tiny_lm.model.forward

    def slow(*a, **k):
        time.sleep(0.02)
        return forward(*a, **k)

    monkeypatch.setattr(tiny_lm.model, "forward", slow)
    try:
        pg.generate_button.click()
        deadline = time.time() + 60
        while len(pg.steps) < 3 and time.time() < deadline:
            time.sleep(0.01)
        assert pg.running and pg.generate_button.disabled and not pg.stop_button.disabled
        pg.stop_button.click()
        assert pg.wait(30)
    finally:
        tiny_lm.model.generation_config.eos_token_id = tiny_lm.tokenizer.eos_token_id
    assert 3 <= len(pg.steps) < 200
    assert "stopped" in pg.status.value
    assert shown(pg.output)["text/plain"].endswith(pg.steps[-1].text)


def test_chat_widget_multi_turn(tiny_lm):
    c = widgets.chat(tiny_lm, max_new_tokens=6)
    c.message.value = "the cat"
    c.send_button.click()
    c.wait(60)
    assert [m["role"] for m in c.messages] == ["user", "assistant"] and c.message.value == ""
    reply = G.generate(tiny_lm, [{"role": "user", "content": "the cat"}], chat=True, max_new_tokens=6).strip()
    assert c.messages[1]["content"] == reply
    c.message.value = "a dog"
    c.send()
    c.wait(60)
    assert [m["role"] for m in c.messages] == ["user", "assistant", "user", "assistant"]
    assert "you: a dog" in shown(c.output)["text/plain"]
    c.message.value = ""
    assert c.send() is False and "empty message" in c.error
    c.reset()
    assert c.messages == []
