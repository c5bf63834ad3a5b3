"""lmkit.generate: parity with model.generate (greedy and seeded sampling), steps, stopping, bad settings."""
from __future__ import annotations

import threading

import pytest
import torch

from lmkit import generate as G

PROMPT = "the cat sat on the"
SAMPLED = [dict(do_sample=True, seed=0), dict(do_sample=True, seed=1, temperature=0.7),
           dict(do_sample=True, seed=2, top_k=5), dict(do_sample=True, seed=3, top_p=0.8),
           dict(do_sample=True, seed=4, temperature=1.5, top_k=20, top_p=0.9, repetition_penalty=1.3),
           dict(do_sample=True, seed=5, min_p=0.1), dict(do_sample=True, seed=6, min_p=0.3, temperature=1.8),
           dict(do_sample=True, seed=7, min_p=0.05, top_k=0, top_p=0.95, repetition_penalty=1.2)]


def ids_of(lm, prompt=PROMPT, **settings):
    return [step.id for step in G.stream(lm, prompt, **settings)]


@pytest.fixture(scope="module")
def no_eos_lm(tiny_lm):
    """The tiny model with EOS switched off, so that every run produces exactly max_new_tokens tokens."""
    from dataclasses import replace

    model = type(tiny_lm.model)(tiny_lm.model.config)
    model.load_state_dict(tiny_lm.model.state_dict())
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    tok = type(tiny_lm.tokenizer).from_pretrained(tiny_lm.tokenizer.name_or_path)
    tok.eos_token = None
    return replace(tiny_lm, model=model.eval(), tokenizer=tok)


# ----------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("settings", [{}, dict(repetition_penalty=1.5)], ids=["greedy", "greedy+penalty"])
def test_greedy_matches_model_generate(tiny_lm, settings):
    ours = ids_of(tiny_lm, max_new_tokens=20, **settings)
    assert ours == G.reference(tiny_lm, PROMPT, max_new_tokens=20, **settings)
    assert len(ours) >= 1


@pytest.mark.parametrize("settings", SAMPLED, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_seeded_sampling_matches_model_generate(tiny_lm, settings):
    ours = ids_of(tiny_lm, max_new_tokens=20, **settings)
    torch.manual_seed(settings["seed"])
    ref = tiny_lm.model.generate(tiny_lm.encode(PROMPT), max_new_tokens=20,
                                 **{k: v for k, v in settings.items() if k != "seed"})
    assert ours == ref[0, len(tiny_lm.encode(PROMPT)[0]):].tolist()


def test_sampling_differs_across_seeds_and_repeats_with_one(no_eos_lm):
    runs = [ids_of(no_eos_lm, max_new_tokens=15, do_sample=True, seed=s) for s in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert len(runs[0]) == 15  # no EOS: runs to max_new_tokens


def test_processors_follow_model_generate_order(tiny_lm):
    """Our list has the same classes in the same order as the one generate() builds (a private API: drift guard)."""
    from transformers import GenerationConfig

    s = G.check_settings(tiny_lm, do_sample=True, temperature=0.5, top_k=7, top_p=0.9, min_p=0.1,
                         repetition_penalty=1.2)
    config = GenerationConfig(**s.generate_kwargs())
    theirs = tiny_lm.model._get_logits_processor(config, input_ids_seq_length=3, device="cpu")
    assert [type(p).__name__ for p in G.processors(s)] == [type(p).__name__ for p in theirs]


def test_chat_uses_the_template_and_matches_generate(tiny_lm):
    ids = G.prompt_ids(tiny_lm, "the cat", chat=True)
    template = tiny_lm.tokenizer.apply_chat_template([{"role": "user", "content": "the cat"}], tokenize=False,
                                                     add_generation_prompt=True)
    assert template.endswith("<|im_start|>assistant\n")
    assert ids[0].tolist() == tiny_lm.tokenizer(template, add_special_tokens=False).input_ids
    messages = [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "sat"},
                {"role": "user", "content": "on the mat"}]
    assert G.prompt_ids(tiny_lm, messages, chat=True).shape[1] > ids.shape[1]
    assert ids_of(tiny_lm, messages, chat=True, max_new_tokens=8) == G.reference(tiny_lm, messages, chat=True,
                                                                                 max_new_tokens=8)


# ----------------------------------------------------------------------------------------------- steps
def test_steps_carry_probabilities_and_alternatives(no_eos_lm):
    steps = list(G.stream(no_eos_lm, PROMPT, max_new_tokens=6, do_sample=True, seed=0, top_k=3, temperature=0.8))
    assert [s.index for s in steps] == list(range(6))
    raw, processed = G.next_token_distribution(no_eos_lm, PROMPT, do_sample=True, top_k=3, temperature=0.8)
    first = steps[0]
    assert first.raw_prob == pytest.approx(float(raw[first.id]), rel=1e-5)
    assert first.prob == pytest.approx(float(processed[first.id]), rel=1e-5)
    for s in steps:
        probs = [a.prob for a in s.alternatives]
        assert len(s.alternatives) == 10 and probs == sorted(probs, reverse=True)
        assert sum(p > 0 for p in probs) == 3  # top_k=3 keeps three tokens
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert s.id in [a.id for a in s.alternatives[:3]]
        assert 0 < s.raw_prob < 1 and s.prob > 0 and s.elapsed > 0


def test_text_of_steps_adds_up_to_the_decoded_output(no_eos_lm):
    steps = list(G.stream(no_eos_lm, PROMPT, max_new_tokens=10))
    assert "".join(s.text for s in steps) == no_eos_lm.tokenizer.decode([s.id for s in steps])
    assert G.generate(no_eos_lm, PROMPT, max_new_tokens=10) == no_eos_lm.tokenizer.decode(
        [s.id for s in steps], skip_special_tokens=True)


def test_stops_at_eos_and_yields_it(tiny_lm):
    eos = tiny_lm.tokenizer.eos_token_id
    tiny_lm.model.generation_config.eos_token_id = eos
    # Find a prompt/seed whose sample hits EOS before the limit: with ~40 tokens that takes a few tries.
    for seed in range(200):
        steps = list(G.stream(tiny_lm, PROMPT, max_new_tokens=30, do_sample=True, seed=seed, temperature=2.0))
        if steps[-1].is_eos:
            break
    assert steps[-1].is_eos and steps[-1].id == eos and len(steps) < 30
    assert not any(s.is_eos for s in steps[:-1])
    assert [s.id for s in steps] == G.reference(tiny_lm, PROMPT, max_new_tokens=30, do_sample=True, seed=seed,
                                                temperature=2.0)


@pytest.mark.parametrize("kind", ["event", "callable"])
def test_external_stop_between_tokens(no_eos_lm, kind):
    event = threading.Event()
    stop = event if kind == "event" else event.is_set
    steps = []
    for step in G.stream(no_eos_lm, PROMPT, max_new_tokens=50, stop=stop):
        steps.append(step)
        if step.index == 4:
            event.set()
    assert len(steps) == 5


def test_generate_with_beams_and_several_sequences(no_eos_lm):
    beams = G.generate(no_eos_lm, PROMPT, max_new_tokens=8, num_beams=3, num_return_sequences=3)
    assert isinstance(beams, list) and len(beams) == 3 and len(set(beams)) == 3
    torch.manual_seed(0)
    ids = no_eos_lm.encode(PROMPT)
    ref = no_eos_lm.model.generate(ids, max_new_tokens=8, num_beams=3, num_return_sequences=3)
    assert beams == no_eos_lm.tokenizer.batch_decode(ref[:, ids.shape[1]:], skip_special_tokens=True)
    samples = G.generate(no_eos_lm, PROMPT, max_new_tokens=8, do_sample=True, num_return_sequences=5, seed=0,
                         temperature=0.7)
    assert len(samples) == 5 and samples == G.generate(no_eos_lm, PROMPT, max_new_tokens=8, do_sample=True,
                                                       num_return_sequences=5, seed=0, temperature=0.7)


def test_max_new_tokens_is_capped_by_the_context(no_eos_lm):
    ctx = G.context_size(no_eos_lm)
    prompt = " ".join(["the"] * (ctx - 3))
    assert len(ids_of(no_eos_lm, prompt, max_new_tokens=50)) == 3


# ----------------------------------------------------------------------------------------------- bad settings
BAD = [
    (dict(do_sample=True, temperature=0), "temperature=0 must be a number > 0 when sampling"),
    (dict(do_sample=True, temperature=-1.0), "temperature=-1.0"),
    (dict(top_p=0), "top_p=0 must be in (0, 1]"),
    (dict(top_p=1.5), "top_p=1.5 must be in (0, 1]"),
    (dict(top_k=-1), "top_k=-1 must be an integer >= 0"),
    (dict(max_new_tokens=0), "max_new_tokens=0 must be an integer >= 1"),
    (dict(repetition_penalty=0), "repetition_penalty=0"),
    (dict(seed=-3), "seed=-3"),
    (dict(tempreature=0.7), "did you mean 'temperature'?"),
    (dict(num_return_sequences=2), "gives identical copies"),
    # non-finite, out-of-range and wrongly typed numbers (issue 21, fault 5)
    (dict(do_sample=True, temperature=float("nan")), "temperature=nan"),
    (dict(temperature=float("nan")), "temperature=nan"),
    (dict(do_sample=True, temperature=float("inf")), "temperature=inf"),
    (dict(temperature=-0.5), "temperature=-0.5"),
    (dict(top_p=float("nan")), "top_p=nan must be in (0, 1]"),
    (dict(top_p=-0.1), "top_p=-0.1 must be in (0, 1]"),
    (dict(top_p=True), "top_p=True must be in (0, 1]"),
    (dict(min_p=-0.1, do_sample=True), "min_p=-0.1 must be in [0, 1]"),
    (dict(min_p=1.5, do_sample=True), "min_p=1.5 must be in [0, 1]"),
    (dict(min_p=float("nan"), do_sample=True), "min_p=nan must be in [0, 1]"),
    (dict(min_p="0.1"), "min_p='0.1' must be in [0, 1]"),
    (dict(repetition_penalty=float("nan")), "repetition_penalty=nan"),
    (dict(repetition_penalty=float("inf")), "repetition_penalty=inf"),
    (dict(repetition_penalty=-1.0), "repetition_penalty=-1.0"),
    (dict(max_new_tokens=5.0), "max_new_tokens=5.0 must be an integer >= 1"),
    (dict(max_new_tokens=True), "max_new_tokens=True must be an integer >= 1"),
    (dict(max_new_tokens=float("inf")), "max_new_tokens=inf must be an integer >= 1"),
    (dict(max_new_tokens=-4), "max_new_tokens=-4"),
    (dict(top_k=2.0), "top_k=2.0 must be an integer >= 0"),
    (dict(top_k=True), "top_k=True must be an integer >= 0"),
    (dict(seed=1.5), "seed=1.5"),
    (dict(seed=True), "seed=True"),
    (dict(num_beams=True), "num_beams=True"),
    (dict(num_beams=float("nan")), "num_beams=nan"),
    (dict(do_sample=1), "do_sample=1 must be True"),
    (dict(chat="yes"), "chat='yes' must be True"),
]


@pytest.mark.parametrize("settings,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_settings_raise_one_line_before_any_work(tiny_lm, monkeypatch, settings, message):
    def boom(*a, **k):
        raise AssertionError("the model ran before the settings were checked")

    monkeypatch.setattr(tiny_lm.model, "forward", boom)
    with pytest.raises(G.SettingsError) as err:
        G.stream(tiny_lm, PROMPT, **settings)  # raises at the call, not at the first next()
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(G.SettingsError):
        G.generate(tiny_lm, PROMPT, **settings)


def test_numpy_numbers_are_numbers(tiny_lm):
    import numpy as np

    assert len(ids_of(tiny_lm, max_new_tokens=np.int64(3), temperature=np.float64(0.7))) <= 3


def test_temperature_zero_is_fine_for_greedy(tiny_lm):
    assert ids_of(tiny_lm, temperature=0, max_new_tokens=3) == ids_of(tiny_lm, max_new_tokens=3)


@pytest.mark.parametrize("prompt,message", [("", "empty prompt"), ("   ", "empty prompt"),
                                            (None, "prompt must be a string")])
def test_bad_prompts(tiny_lm, prompt, message):
    with pytest.raises(ValueError, match=message):
        G.stream(tiny_lm, prompt)


ACCEPTED = "{'role': str, 'content': str}"
WRONG_PROMPTS = [(42, False), (42, True), (None, True), (3.5, False), (b"bytes", False), (["the", "cat"], True),
                 ([1, 2], True), ([{"role": "user"}], True), ([{"content": "hi"}], True), ({"role": "user",
                 "content": "hi"}, True), ([{"role": "user", "content": 5}], True), ([("user", "hi")], True),
                 ([{"role": "user", "content": "the cat"}], False), ({"the", "cat"}, True)]


# ids must not depend on a set's iteration order (hash seeds differ between xdist workers)
@pytest.mark.parametrize("prompt,chat", WRONG_PROMPTS,
                         ids=[f"{sorted(p)!r}-set-chat={c}" if isinstance(p, set) else f"{p!r}-chat={c}"
                              for p, c in WRONG_PROMPTS])
def test_wrong_prompt_types_name_the_accepted_types(tiny_lm, monkeypatch, prompt, chat):
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **kw: pytest.fail("the model ran"))
    for fn in (G.stream, G.generate, G.reference, G.next_token_distribution):
        with pytest.raises(G.SettingsError) as err:
            fn(tiny_lm, prompt, chat=chat)
        assert ACCEPTED in str(err.value) and "\n" not in str(err.value)


def test_prompt_that_fills_the_context(tiny_lm):
    ctx = G.context_size(tiny_lm)
    with pytest.raises(G.SettingsError, match=f"the context holds {ctx}: shorten the prompt"):
        G.stream(tiny_lm, " ".join(["the"] * ctx))


def test_empty_chat_and_beams_in_stream(tiny_lm):
    with pytest.raises(G.SettingsError, match="empty chat"):
        G.stream(tiny_lm, [], chat=True)
    with pytest.raises(G.SettingsError, match="use generate"):
        G.stream(tiny_lm, PROMPT, num_beams=2)


# --------------------------------------------------------------------- a stream cut inside a multi-byte character
class Scripted(torch.nn.Module):
    """The tiny model, forced to emit ``script[i]`` as its i-th new token (a large bonus on that logit)."""

    def __init__(self, inner, script, n_prompt):
        super().__init__()
        self.inner, self.script, self.n_prompt = inner, script, n_prompt
        self.config, self.generation_config = inner.config, inner.generation_config

    def forward(self, input_ids, **kw):  # the cache arrives under the installed transformers' name (lmkit.kvcache)
        cache = kw.get("cache", kw.get("past_key_values"))
        seen = cache.get_seq_length() if cache is not None else 0
        out = self.inner(input_ids=input_ids, **kw)
        step = seen + input_ids.shape[1] - self.n_prompt
        if step < len(self.script):
            out.logits[..., self.script[step]] += 1e4
        return out


@pytest.fixture(scope="module")
def byte_parts():
    """A byte-level tiny LM and, for a few characters, the byte tokens that spell them one byte at a time."""
    from conftest import make_model
    from test_constrained import make_byte_tokenizer

    from lmkit.models import LM

    tok = make_byte_tokenizer()
    lm = LM(model=make_model(len(tok)), tokenizer=tok, device=torch.device("cpu"), name="tiny-bytes")
    # byte-level BPE writes byte b as one printable character (GPT-2's table): printable Latin-1 bytes as
    # themselves, the others shifted to chr(256 + n) in byte order
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in printable]
    to_char = {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}
    spell = {ch: tok.convert_tokens_to_ids([to_char[b] for b in ch.encode()]) for ch in ("猫", "🐱", "é")}
    assert all(tok.decode(ids) == ch for ch, ids in spell.items())
    return lm, spell


def scripted_stream(lm, script, prompt="the cat", stop_after=None, **settings):
    n_prompt = lm.encode(prompt).shape[1]
    from dataclasses import replace as dc_replace

    forced = dc_replace(lm, model=Scripted(lm.model, script, n_prompt))
    event, steps = threading.Event(), []
    for step in G.stream(forced, prompt, stop=event, **settings):
        steps.append(step)
        if stop_after is not None and step.index + 1 >= stop_after:
            event.set()
    return steps


def joined_equals_decode(lm, steps):
    return "".join(s.text for s in steps) == lm.tokenizer.decode([s.id for s in steps])


@pytest.mark.parametrize("char", ["猫", "🐱", "é"])
def test_stream_cut_by_max_tokens_inside_a_character_keeps_its_bytes(byte_parts, char):
    lm, spell = byte_parts
    parts = spell[char]
    for cut in range(1, len(parts) + 1):
        steps = scripted_stream(lm, parts + parts, max_new_tokens=cut)
        assert [s.id for s in steps] == parts[:cut]
        assert joined_equals_decode(lm, steps)
        assert ("\ufffd" in "".join(s.text for s in steps)) == (cut < len(parts))
    whole = scripted_stream(lm, parts + spell["é"], max_new_tokens=len(parts) + 1)
    assert [s.text for s in whole][:len(parts)] == [""] * (len(parts) - 1) + [char]  # held back, then whole


@pytest.mark.parametrize("char", ["猫", "🐱"])
def test_stream_ending_at_eos_inside_a_character_keeps_its_bytes(byte_parts, char):
    lm, spell = byte_parts
    eos = lm.tokenizer.eos_token_id
    for cut in range(1, len(spell[char])):
        steps = scripted_stream(lm, spell[char][:cut] + [eos], max_new_tokens=20)
        assert steps[-1].is_eos and len(steps) == cut + 1
        assert joined_equals_decode(lm, steps)


@pytest.mark.parametrize("char", ["猫", "🐱"])
def test_stop_inside_a_character_finishes_the_character(byte_parts, char):
    lm, spell = byte_parts
    parts = spell[char]
    steps = scripted_stream(lm, parts + parts, max_new_tokens=20, stop_after=1)
    assert [s.id for s in steps] == parts and "".join(s.text for s in steps) == char
    # bytes that never complete a character: the stop still ends the stream soon, and nothing is lost
    lead = parts[:1] * 10
    steps = scripted_stream(lm, lead, max_new_tokens=20, stop_after=1)
    assert len(steps) <= 4 and joined_equals_decode(lm, steps)


def test_stream_cut_by_the_end_of_the_context_keeps_its_bytes(byte_parts):
    lm, spell = byte_parts
    ctx = G.context_size(lm)
    prompt = "the cat " * 200
    n = lm.encode(prompt).shape[1]
    ids = lm.encode(prompt)[0, : ctx - 2].tolist()
    prompt = lm.tokenizer.decode(ids)
    room = ctx - lm.encode(prompt).shape[1]
    assert n > ctx and 1 <= room < len(spell["🐱"])
    steps = scripted_stream(lm, spell["🐱"], prompt=prompt, max_new_tokens=50)
    assert len(steps) == room and joined_equals_decode(lm, steps)


# ----------------------------------------------------------------------------------------- exercises of notebook 06
@pytest.fixture
def lenient(monkeypatch):
    """Wrong answers below must come back as results, not as the AssertionError of make test's strict mode."""
    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)


def last_logits(lm, prompt=PROMPT):
    with torch.inference_mode():
        return lm.model(lm.encode(prompt)).logits[0, -1].float()


def test_exercise_04_1_top_k_by_hand(tiny_lm, lenient):
    from lmkit import exercises

    z = last_logits(tiny_lm)
    top = torch.topk(z, 5)
    right = torch.softmax(torch.full_like(z, float("-inf")).scatter(0, top.indices, top.values), -1)
    assert exercises.check("06.1", right, lm=tiny_lm, prompt=PROMPT)
    assert not exercises.check("06.1", torch.softmax(z, -1), lm=tiny_lm, prompt=PROMPT)  # no filtering
    top6 = torch.topk(z, 6)
    wrong_k = torch.softmax(torch.full_like(z, float("-inf")).scatter(0, top6.indices, top6.values), -1)
    assert not exercises.check("06.1", wrong_k, lm=tiny_lm, prompt=PROMPT)
    assert not exercises.check("06.1", right[:-1], lm=tiny_lm, prompt=PROMPT)  # wrong shape: not a crash


def greedy_without_cache(lm, prompt, n):
    seq, new = lm.encode(prompt), []
    with torch.inference_mode():
        for _ in range(n):
            nxt = int(lm.model(seq).logits[0, -1].argmax())
            new.append(nxt)
            seq = torch.cat([seq, torch.tensor([[nxt]])], 1)
            if nxt in G.eos_ids(lm):
                break
    return new


@pytest.mark.parametrize("fixture", ["tiny_lm", "no_eos_lm"])
def test_exercise_04_2_greedy_is_the_argmax(request, fixture, lenient):
    from lmkit import exercises

    lm = request.getfixturevalue(fixture)
    right = greedy_without_cache(lm, PROMPT, 8)
    assert exercises.check("06.2", right, lm=lm, prompt=PROMPT, max_new_tokens=8)
    assert not exercises.check("06.2", right[:-1] + [(right[-1] + 1) % len(lm.tokenizer)], lm=lm, prompt=PROMPT,
                               max_new_tokens=8)
    assert not exercises.check("06.2", right[:-1], lm=lm, prompt=PROMPT, max_new_tokens=8)  # one short


def test_exercise_04_3_nucleus_sizes(no_eos_lm, lenient):
    from lmkit import exercises
    from lmkit.exercises import ex06

    lm, n = no_eos_lm, 6
    new = G.reference(lm, PROMPT, max_new_tokens=n)
    seq = torch.cat([lm.encode(PROMPT), torch.tensor([new[:-1]])], 1)
    n0 = lm.encode(PROMPT).shape[1]
    with torch.inference_mode():
        probs = torch.softmax(lm.model(seq).logits[0, n0 - 1:].float(), -1)
    mass = probs.sort(-1, descending=True).values.cumsum(-1)
    right = [int((m < 0.9).sum()) + 1 for m in mass]
    kw = dict(lm=lm, prompt=PROMPT, max_new_tokens=n, top_p=0.9)
    assert exercises.check("06.3", right, **kw)
    assert not exercises.check("06.3", [k + 1 for k in right], **kw)  # off by one: one token too many
    assert not exercises.check("06.3", [int((m < 0.9).sum()) for m in mass], **kw)  # stops short of 0.9
    assert not exercises.check("06.3", right[:-1], **kw)
    # the sizes agree with what model.generate's TopPLogitsWarper keeps, step by step
    assert all(k in allowed for k, allowed in zip(right, ex06.nucleus_sizes(probs, 0.9)))


def test_nucleus_sizes_follow_the_warper():
    from transformers import TopPLogitsWarper

    from lmkit.exercises import ex06

    torch.manual_seed(0)
    logits = torch.randn(20, 50) * 3
    kept = (TopPLogitsWarper(top_p=0.7)(None, logits.clone()) > float("-inf")).sum(-1)
    allowed = ex06.nucleus_sizes(torch.softmax(logits, -1), 0.7)
    assert all(k in a for k, a in zip(kept.tolist(), allowed))
    assert ex06.nucleus_sizes(torch.tensor([[0.6, 0.3, 0.1]]), 0.5) == [{1}]
    assert ex06.nucleus_sizes(torch.tensor([[0.6, 0.3, 0.1]]), 0.8) == [{2}]


def test_exercise_04_4_temperature_at_half(tiny_lm, lenient):
    from lmkit import exercises

    z = last_logits(tiny_lm).double()
    p_top = lambda t: torch.softmax(z / t, -1).max().item()  # noqa: E731
    lo, hi = 1e-4, 1e4
    for _ in range(200):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if p_top(mid) >= 0.5 else (lo, mid)
    assert p_top(hi) < 0.5 <= p_top(lo)
    assert exercises.check("06.4", hi, lm=tiny_lm, prompt=PROMPT)
    assert not exercises.check("06.4", hi * 1.1, lm=tiny_lm, prompt=PROMPT)
    assert not exercises.check("06.4", 1.0, lm=tiny_lm, prompt=PROMPT)


def cached_sampling(lm, prompt, n, seed, temperature, top_k):
    """Exercise 06.5's loop: prefill once, then per step temperature, top-k, torch.multinomial, one cached pass."""
    from transformers import DynamicCache

    cache, new = DynamicCache(config=lm.model.config), []
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = lm.model(lm.encode(prompt), past_key_values=cache, use_cache=True)
        for _ in range(n):
            z = out.logits[0, -1].float() / temperature
            top = torch.topk(z, top_k)
            probs = torch.softmax(torch.full_like(z, float("-inf")).scatter(0, top.indices, top.values), -1)[None]
            nxt = torch.multinomial(probs, num_samples=1)
            new.append(int(nxt))
            if new[-1] in G.eos_ids(lm):
                break
            out = lm.model(nxt, past_key_values=cache, use_cache=True)
    return new


def test_exercise_06_5_cached_sampling_loop(no_eos_lm, lenient):
    from lmkit import exercises

    kw = dict(lm=no_eos_lm, prompt=PROMPT, seed=3, temperature=0.8, top_k=20, max_new_tokens=12)
    right = cached_sampling(no_eos_lm, PROMPT, 12, seed=3, temperature=0.8, top_k=20)
    assert len(right) == 12
    assert exercises.check("06.5", right, **kw)
    assert not exercises.check("06.5", cached_sampling(no_eos_lm, PROMPT, 12, seed=4, temperature=0.8, top_k=20),
                               **kw)  # another seed
    assert not exercises.check("06.5", cached_sampling(no_eos_lm, PROMPT, 12, seed=3, temperature=0.8, top_k=2),
                               **kw)  # another top-k (the tiny model's logits are too flat for a temperature to tell)
    assert not exercises.check("06.5", right[:-1], **kw)  # one short
    assert not exercises.check("06.5", G.reference(no_eos_lm, PROMPT, max_new_tokens=12), **kw)  # greedy


# ----------------------------------------------------------------------------------------------- the real model
REAL_PROMPTS = ["The capital of France is", "def fibonacci(n):"]


@pytest.mark.integration
@pytest.mark.parametrize("prompt", REAL_PROMPTS)
def test_real_model_greedy_parity(real_lm, prompt):
    assert ids_of(real_lm, prompt, max_new_tokens=25) == G.reference(real_lm, prompt, max_new_tokens=25)


@pytest.mark.integration
@pytest.mark.parametrize("settings", [dict(do_sample=True, seed=1, temperature=0.7),
                                      dict(do_sample=True, seed=5, temperature=1.3, top_k=40, top_p=0.9,
                                           repetition_penalty=1.2)], ids=["t0.7", "mixed"])
def test_real_model_sampling_parity(real_lm, settings):
    ours = ids_of(real_lm, REAL_PROMPTS[0], max_new_tokens=25, **settings)
    ids = real_lm.encode(REAL_PROMPTS[0])
    torch.manual_seed(settings["seed"])
    ref = real_lm.model.generate(ids, max_new_tokens=25, **{k: v for k, v in settings.items() if k != "seed"})
    assert ours == ref[0, ids.shape[1]:].tolist()


@pytest.mark.integration
def test_real_model_stream_cut_inside_a_character(real_lm):
    prompt = "Write one short sentence in Chinese about a cat, with an emoji."
    ids = G.reference(real_lm, prompt, chat=True, max_new_tokens=3)
    inside = [n for n in (1, 2, 3) if real_lm.tokenizer.decode(ids[:n]).endswith("\ufffd")]
    assert inside  # the answer opens with a character of several byte tokens: a cut falls inside it
    for n in (1, 2, 3):
        steps = list(G.stream(real_lm, prompt, chat=True, max_new_tokens=n))
        text = "".join(s.text for s in steps)
        assert [s.id for s in steps] == ids[:n] and text == real_lm.tokenizer.decode(ids[:n])
        assert text.endswith("\ufffd") == (n in inside)  # a cut inside a character keeps its bytes, as U+FFFD
        assert not any("\ufffd" in s.text for s in steps[:-1])  # before the end, a partial character is held back


@pytest.mark.integration
def test_real_model_min_p_parity(real_lm):
    settings = dict(do_sample=True, seed=3, min_p=0.1, temperature=1.2)
    ours = ids_of(real_lm, REAL_PROMPTS[0], max_new_tokens=20, **settings)
    ids = real_lm.encode(REAL_PROMPTS[0])
    torch.manual_seed(3)
    ref = real_lm.model.generate(ids, max_new_tokens=20, do_sample=True, min_p=0.1, temperature=1.2)
    assert ours == ref[0, ids.shape[1]:].tolist()


@pytest.mark.integration
def test_real_model_chat_stops_at_end_of_turn(real_lm):
    steps = list(G.stream(real_lm, "What is the capital of France? Answer in one word.", chat=True,
                          max_new_tokens=40))
    assert steps[-1].is_eos and steps[-1].token == "<|im_end|>"
    assert "Paris" in "".join(s.text for s in steps)
