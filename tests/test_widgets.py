"""lmkit.widgets driven headless: set values, click, wait, read what the widget shows."""
from __future__ import annotations

import time

import pytest

from lmkit import generate as G
from lmkit import widgets

PROMPT = "the cat sat on the"


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
    assert len(pg.output.outputs) == 1  # one view, replaced as tokens arrive
    assert pg.output_text == PROMPT + "".join(widgets.EOS_MARK if s.is_eos else s.text for s in expected)
    html = pg.output_html
    assert html.count("<span title=") == len(expected)
    assert widgets.prob_color(expected[0].raw_prob) in html  # coloured by the (raw) probability
    assert f"p={expected[0].prob:.3f}" in html
    assert "tokens/s" in pg.status_text and pg.error is None
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
    assert len(pg.alternatives.outputs) == 1
    assert pg.output_image.startswith(b"\x89PNG")
    step = pg.steps[2]
    assert pg.alternatives_text.startswith("step 2")
    assert "<- chosen" in pg.alternatives_text and f"p={step.alternatives[0].prob:.3f}" in pg.alternatives_text


def test_color_by_processed_changes_the_colours(pg):
    pg.top_k.value, pg.temperature.value = 3, 0.5  # processed probabilities differ from raw ones
    pg.generate_button.click()
    pg.wait(60)
    raw_html = pg.output_html
    pg.color_by.value = "processed"
    proc_html = pg.output_html
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
    assert message in pg.error and message.split(" must")[0] in pg.status_text
    assert "Traceback" not in pg.status_text and pg.output.outputs == () and pg.output_text == ""


def test_errors_inside_the_thread_become_a_message(pg, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("out of memory\nmore lines")

    monkeypatch.setattr(pg.lm.model, "forward", broken)
    pg.generate_button.click()
    pg.wait(30)
    assert pg.error == "RuntimeError: out of memory" and pg.status_text == "RuntimeError: out of memory"
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
    assert "stopped" in pg.status_text
    assert pg.output_text.endswith(pg.steps[-1].text)


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
    assert "you: a dog" in c.output_text
    c.message.value = ""
    assert c.send() is False and "empty message" in c.error
    c.reset()
    assert c.messages == []


# ----------------------------------------------------------------------------------------------- without a kernel
def test_playground_plain_text_fallback_shows_its_content(pg):
    bundle = pg._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live view is still there
    before = bundle["text/plain"]
    assert "VBox" not in before and "Textarea" not in before
    assert before.splitlines()[0].startswith("generation playground (sampling: temperature 0.7")
    assert before.splitlines()[-1] == f"prompt: {PROMPT}"
    pg.sample.value = False
    pg.generate_button.click()
    pg.wait(60)
    after = pg._repr_mimebundle_()["text/plain"]
    assert after == repr(pg) and "(greedy;" in after.splitlines()[0]
    assert pg.status_text in after and "tokens/s" in after
    assert after.endswith(pg.output_text) and pg.output_text.startswith(PROMPT) and len(pg.text) > 0
    assert pg.text.replace(widgets.EOS_MARK, "") in after.replace(widgets.EOS_MARK, "")


def test_playground_bad_setting_shows_in_the_fallback(pg):
    pg.temperature.value = 0.0
    pg.generate_button.click()
    pg.wait(5)
    text = pg._repr_mimebundle_()["text/plain"]
    assert "temperature=0.0 must be a number > 0" in text and "Traceback" not in text


def test_chat_plain_text_fallback_is_the_conversation(tiny_lm):
    c = widgets.chat(tiny_lm, max_new_tokens=4)
    assert c._repr_mimebundle_()["text/plain"].startswith("chat")
    c.message.value = "the cat"
    c.send()
    c.wait(60)
    text = c._repr_mimebundle_()["text/plain"]
    assert "VBox" not in text and "you: the cat" in text
    assert f"model: {c.messages[1]['content']}" in text and "tokens/s" in text


def test_html_to_text_reads_like_the_page():
    assert widgets.html_to_text('<span style="color:red">a &lt; b &amp; c</span>') == "a < b & c"
    assert widgets.html_to_text("<div>one</div><div>two</div>") == "one\ntwo"
    assert widgets.html_to_text("") == ""


def test_playground_slider_reaches_the_max_new_tokens_it_was_built_with(tiny_lm):
    """256 is the slider's usual top; a playground built with more (a constrained JSON object) keeps the value, not
    256; what is not a count >= 1 is refused in one line naming it."""
    assert widgets.playground(tiny_lm, max_new_tokens=12).max_new_tokens.max == 256
    big = widgets.playground(tiny_lm, max_new_tokens=400)
    assert big.max_new_tokens.max == 400 and big.settings()["max_new_tokens"] == 400
    for bad in (0, True, 2.7):
        with pytest.raises(ValueError, match=r"^max_new_tokens=.* must be an integer >= 1"):
            widgets.playground(tiny_lm, max_new_tokens=bad)


def test_status_line_says_why_the_stream_ended(tiny_lm):
    ctx = G.context_size(tiny_lm)
    words = tiny_lm.tokenizer.decode(tiny_lm.encode(" ".join(["the"] * ctx))[0, : ctx - 3])  # room for 3 tokens
    for prompt, n, expected in [(PROMPT, 2, "max_new_tokens reached"), (words, 12, "end of the context")]:
        p = widgets.playground(tiny_lm, prompt=prompt, max_new_tokens=n)
        p.sample.value = False
        p.generate_button.click()
        assert p.wait(60)
        assert p.steps[-1].finish_reason in ("length", "context")
        assert p.status_text.endswith(expected), p.status_text
