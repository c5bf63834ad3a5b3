"""lmkit.constrained: JSON-schema and regex constrained output on a tiny byte-level model; one-line errors."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest
import torch

from conftest import CHAT_TEMPLATE, make_model
from lmkit import constrained as C
from lmkit import generate as G
from lmkit.models import LM

NESTED = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 8},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120},
                         "pet": {"type": "object",
                                 "properties": {"kind": {"enum": ["cat", "dog"]},
                                                "tags": {"type": "array", "items": {"type": "boolean"},
                                                         "maxItems": 3}},
                                 "required": ["kind", "tags"], "additionalProperties": False}},
          "required": ["name", "age", "pet"], "additionalProperties": False}


def make_byte_tokenizer():
    """A byte-level BPE (every byte is a token, like SmolLM2's), so any JSON text can be written."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    corpus = ['{"name": "cat", "age": 3, "tags": ["small", "red"]}', "the cat sat on the mat",
              '{"ok": true, "items": [1, 2, 3], "nested": {"a": null}}'] * 5
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def byte_lm():
    tok = make_byte_tokenizer()
    return LM(model=make_model(len(tok)), tokenizer=tok, device=torch.device("cpu"), name="tiny-bytes")


def valid(text, schema) -> bool:
    jsonschema.validate(json.loads(text), schema)
    return True


@pytest.mark.parametrize("settings", [{}, dict(do_sample=True, seed=0), dict(do_sample=True, seed=1, temperature=1.5),
                                      dict(do_sample=True, seed=2, top_p=0.9, min_p=0.05),
                                      dict(repetition_penalty=1.3), dict(chat=True)])
def test_nested_schema_output_parses_and_validates(byte_lm, settings):
    out = G.generate(byte_lm, "the cat", json_schema=NESTED, max_new_tokens=400, **settings)
    assert valid(out, NESTED)


def test_schema_as_json_string_and_stream_steps(byte_lm):
    steps = list(G.stream(byte_lm, "the cat", json_schema=json.dumps(NESTED), max_new_tokens=400))
    text = "".join(s.text for s in steps)
    assert valid(text, NESTED)
    assert all(s.prob > 0 for s in steps)
    # a disallowed token gets probability 0 after the mask: the first step can only open the object
    first = steps[0]
    assert byte_lm.tokenizer.decode([first.id]).lstrip(" \n").startswith("{")
    assert all(a.prob == 0 or byte_lm.tokenizer.decode([a.id]).lstrip(" \n").startswith("{")
               for a in first.alternatives)


def test_unconstrained_random_model_does_not_write_json(byte_lm):
    out = G.generate(byte_lm, "the cat", max_new_tokens=60)
    with pytest.raises((json.JSONDecodeError, jsonschema.ValidationError)):
        valid(out, NESTED)


@pytest.mark.parametrize("pattern", [r"[a-c]{2,5}-[0-9]{2}", r"(yes|no)", r"\d{4}-\d{2}-\d{2}", r"[A-Z][a-z]{0,6}!"])
@pytest.mark.parametrize("settings", [{}, dict(do_sample=True, seed=3)])
def test_regex_output_matches(byte_lm, pattern, settings):
    out = G.generate(byte_lm, "the cat", regex=pattern, max_new_tokens=40, **settings)
    assert re.fullmatch(pattern, out), out


def test_mask_allows_exactly_the_continuations(byte_lm):
    g = C.Grammar(byte_lm, regex=r"(cat|dog)s?")
    allowed = g.allowed()
    assert allowed.shape == (len(byte_lm.tokenizer),)
    texts = [byte_lm.tokenizer.decode([i]) for i in torch.nonzero(allowed).flatten().tolist()]
    assert texts and all(("cats".startswith(t) or "dogs".startswith(t)) for t in texts)
    for token in byte_lm.tokenizer.encode("cat", add_special_tokens=False):
        assert g.allowed()[token]
        g.advance(token)
    assert g.accepting and not g.done  # "cat" matches, "cats" may still follow
    logits = g.mask(torch.zeros(1, len(byte_lm.tokenizer)))
    kept = [byte_lm.tokenizer.decode([i]) for i in torch.nonzero(logits[0] > float("-inf")).flatten().tolist()]
    assert set(kept) <= {"s", "<|im_end|>"} and "s" in kept


BAD = [
    (dict(json_schema={"type": "foo"}), "not a valid JSON Schema"),
    (dict(json_schema={"$ref": "#/nowhere"}), "rejected by llguidance"),
    (dict(json_schema={"type": "string", "pattern": "(?<=a)b"}), "rejected by llguidance"),
    (dict(json_schema="{not json"), "json_schema is not valid JSON"),
    (dict(json_schema=["a"]), "json_schema must be a dict"),
    (dict(regex="["), "rejected by llguidance"),
    (dict(regex="(?!x)"), "rejected by llguidance"),
    (dict(regex=r"a[^\s\S]b"), "matches no output"),
    (dict(regex=5), "regex=5 must be a string"),
    (dict(regex="a", json_schema={"type": "string"}), "both given"),
    (dict(regex="a", num_beams=2), "follow one sequence"),
]


@pytest.mark.parametrize("settings,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_constraints_raise_one_line_before_any_work(byte_lm, monkeypatch, settings, message):
    monkeypatch.setattr(byte_lm.model, "forward", lambda *a, **kw: pytest.fail("the model ran"))
    for fn in (G.stream, G.generate):
        with pytest.raises(G.SettingsError, match=re.escape(message)) as err:
            fn(byte_lm, "the cat", **settings)
        assert "\n" not in str(err.value)


@pytest.mark.integration
def test_real_model_json_and_regex(real_lm):
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30},
                                               "country": {"type": "string", "maxLength": 30}},
              "required": ["city", "country"], "additionalProperties": False}
    out = G.generate(real_lm, "Name a city and its country, as JSON.", chat=True, json_schema=schema,
                     max_new_tokens=60)
    assert valid(out, schema)
    assert re.fullmatch(r"[0-9]{4}", G.generate(real_lm, "In which year did the Second World War end?",
                                                chat=True, regex=r"[0-9]{4}", max_new_tokens=8))


def test_playground_json_option_constrains_the_stream(byte_lm):
    """The playground's JSON toggle passes its json_schema to the stream: the text it shows parses and validates."""
    from lmkit import widgets

    pg = widgets.playground(byte_lm, prompt="the cat", max_new_tokens=400)
    pg.sample.value = False
    assert "json_schema" not in pg.settings()
    pg.json.value = True
    assert pg.settings()["json_schema"] == {"type": "object"}  # the default: any JSON object
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 99}},
              "required": ["name", "age"], "additionalProperties": False}
    pg.json_schema = schema  # bounded, so that a random model closes the object within the budget
    pg.generate_button.click()
    assert pg.wait(120) and pg.error is None, pg.status_text
    assert valid(pg.text, schema)
    assert [s.id for s in pg.steps] == [s.id for s in G.stream(byte_lm, "the cat", json_schema=schema,
                                                               max_new_tokens=400)]


# ------------------------------------------------------------- the grammar is a logits processor: any decoder takes it
@pytest.mark.parametrize("constraint", [dict(json_schema=NESTED), dict(regex=r"[a-c]{2,5}-[0-9]{2}")])
def test_grammar_processor_through_model_generate_gives_lmkit_tokens(byte_lm, constraint):
    from transformers import LogitsProcessorList

    s = G.check_settings(byte_lm, max_new_tokens=400, **constraint)
    ids = G.prompt_ids(byte_lm, "the cat")
    ours = [step.id for step in G.stream(byte_lm, "the cat", max_new_tokens=400, **constraint)]
    proc = C.for_settings(byte_lm, s, ids.shape[1])
    assert isinstance(proc, C.GrammarLogitsProcessor)
    with torch.inference_mode():
        out = byte_lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=400, do_sample=False,
                                     logits_processor=LogitsProcessorList([proc]))
    theirs = out[0, ids.shape[1]:].tolist()
    eos = G.eos_ids(byte_lm)
    # lmkit stops as soon as the grammar is complete; model.generate takes the one token then allowed: EOS
    assert theirs[:len(ours)] == ours and set(theirs[len(ours):]) <= eos and len(theirs) <= len(ours) + 1
    text = byte_lm.tokenizer.decode(theirs, skip_special_tokens=True)
    assert valid(text, NESTED) if "json_schema" in constraint else re.fullmatch(constraint["regex"], text)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grammar_processor_samples_like_lmkit_through_model_generate(byte_lm, seed):
    from transformers import LogitsProcessorList

    settings = dict(do_sample=True, temperature=1.3, top_k=20, top_p=0.9, repetition_penalty=1.2, max_new_tokens=300)
    ids = G.prompt_ids(byte_lm, "the cat")
    ours = [step.id for step in G.stream(byte_lm, "the cat", json_schema=NESTED, seed=seed, **settings)]
    proc = C.for_settings(byte_lm, G.check_settings(byte_lm, json_schema=NESTED), ids.shape[1])
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = byte_lm.model.generate(ids, attention_mask=torch.ones_like(ids), **settings,
                                     logits_processor=LogitsProcessorList([proc]))
    theirs = out[0, ids.shape[1]:].tolist()
    assert theirs[:len(ours)] == ours and set(theirs[len(ours):]) <= G.eos_ids(byte_lm)
    assert valid(byte_lm.tokenizer.decode(ours), NESTED)


def test_grammar_processor_follows_a_caller_that_backs_up(byte_lm):
    g = C.Grammar(byte_lm, regex=r"(cat|dog)s?")
    proc = C.GrammarLogitsProcessor(g, prompt_length=2)
    cat = byte_lm.tokenizer.encode("cats", add_special_tokens=False)
    dog = byte_lm.tokenizer.encode("dog", add_special_tokens=False)
    prompt = [5, 6]
    proc(torch.tensor([prompt + cat]), torch.zeros(1, len(byte_lm.tokenizer)))
    assert g.consumed == cat and proc.finished(torch.tensor([prompt + cat]))  # nothing can follow "cats"
    scores = proc(torch.tensor([prompt + dog[:1]]), torch.zeros(1, len(byte_lm.tokenizer)))  # back up, take d
    assert g.consumed == dog[:1] and not proc.finished(torch.tensor([prompt + dog[:1]]))
    fresh = C.Grammar(byte_lm, regex=r"(cat|dog)s?")
    fresh.advance(dog[0])
    assert torch.equal(torch.isfinite(scores[0]), fresh.allowed())
    with pytest.raises(G.SettingsError, match="one sequence"):
        proc(torch.tensor([prompt, prompt]), torch.zeros(2, len(byte_lm.tokenizer)))


@pytest.mark.parametrize("constraint", [dict(json_schema=NESTED), dict(regex=r"(yes|no), [0-9]{2,4}")])
@pytest.mark.parametrize("k", [1, 3])
def test_speculative_decoding_under_a_grammar_is_token_identical(byte_lm, constraint, k):
    ours = [step.id for step in G.stream(byte_lm, "the cat", max_new_tokens=300, **constraint)]
    for draft in (G.early_exit_draft(byte_lm, 1), byte_lm):
        result = G.speculative(byte_lm, "the cat", draft, num_draft_tokens=k, max_new_tokens=300, **constraint)
        assert result.ids == ours
    sampled = G.speculative(byte_lm, "the cat", byte_lm, num_draft_tokens=k, max_new_tokens=300, do_sample=True,
                            seed=4, **constraint)
    text = sampled.text
    assert valid(text, NESTED) if "json_schema" in constraint else re.fullmatch(constraint["regex"], text)


# ------------------------------------------------------------------- strict, compact JSON unless the schema says not
OPEN = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                         "population": {"type": "integer"}}, "required": ["city", "population"]}


@pytest.mark.parametrize("seed", range(6))
def test_json_objects_are_closed_and_compact_by_default(byte_lm, seed):
    out = G.generate(byte_lm, "the cat", json_schema=OPEN, max_new_tokens=200, do_sample=True, seed=seed,
                     temperature=1.5)
    assert out.finish_reason == "grammar" and valid(out, OPEN)
    assert set(json.loads(out)) == {"city", "population"}  # no key the schema does not name
    assert json.dumps(json.loads(out), ensure_ascii=False) == out  # one layout: json.dumps's separators


def test_strict_schema_closes_named_objects_only():
    from lmkit.decoding.grammar import strict_schema

    inner = {"type": "object", "properties": {"x": {"type": "integer"}}}
    schema = {"type": "object", "properties": {"a": inner, "any": {"type": "object"},
                                               "list": {"type": "array", "items": inner}},
              "$defs": {"d": inner}}
    got = strict_schema(schema)
    assert got["additionalProperties"] is False and got["properties"]["a"]["additionalProperties"] is False
    assert got["properties"]["list"]["items"]["additionalProperties"] is False
    assert got["$defs"]["d"]["additionalProperties"] is False
    assert "additionalProperties" not in got["properties"]["any"]  # "any object" stays any object
    assert "additionalProperties" not in schema and "additionalProperties" not in inner  # the caller's dict unchanged
    said = {"type": "object", "properties": {"x": {}}, "additionalProperties": True}
    assert strict_schema(said) == said
    parts = {"type": "object", "properties": {"x": {}}, "allOf": [{"properties": {"y": {}}}]}
    assert "additionalProperties" not in strict_schema(parts)


def accepts(lm, schema, text) -> bool:
    """Whether the grammar of ``schema`` lets the tokens of ``text`` through, one by one, to a complete match."""
    g = C.Grammar(lm, json_schema=schema)
    for token in lm.tokenizer.encode(text, add_special_tokens=False):
        if not g.allowed()[token]:
            return False
        g.advance(token)
    return g.accepting


def test_open_objects_and_flexible_whitespace_when_the_schema_asks(byte_lm):
    three = '{"city": "a", "population": 1, "z": 2}'
    assert accepts(byte_lm, OPEN, '{"city": "a", "population": 1}') and not accepts(byte_lm, OPEN, three)
    assert accepts(byte_lm, dict(OPEN, additionalProperties=True), three)
    loose = '{ "city":"a",\n  "population":1 }'
    assert not accepts(byte_lm, OPEN, loose)
    flexible = {"whitespace_flexible": True, "item_separator": ",", "key_separator": ":"}
    assert accepts(byte_lm, dict(OPEN, **{"x-guidance": flexible}), loose)


def test_exercise_07_3_wants_the_right_schema_and_a_constrained_generation(byte_lm, monkeypatch):
    import copy

    import lmkit
    from lmkit.exercises.ex07 import CITY_SCHEMA

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    made = G.generate(byte_lm, "the cat", json_schema=CITY_SCHEMA, max_new_tokens=400)
    assert made.finish_reason == "grammar" and lmkit.exercises.check("07.3", made)
    typed = '{"city": "Paris", "country": "France", "population": 2100000}'
    assert valid(typed, CITY_SCHEMA) and not lmkit.exercises.check("07.3", typed)  # valid JSON, typed by hand
    cut = G.generate(byte_lm, "the cat", json_schema=CITY_SCHEMA, max_new_tokens=2)
    assert cut.finish_reason == "length" and not lmkit.exercises.check("07.3", cut)
    # the student's schema is what the exercise teaches: a wrong one makes the grammar write a wrong answer
    as_string = copy.deepcopy(CITY_SCHEMA)
    as_string["properties"]["population"] = {"type": "string", "maxLength": 9}
    no_population = copy.deepcopy(CITY_SCHEMA)
    del no_population["properties"]["population"]
    no_population["required"] = ["city", "country"]
    for wrong in (as_string, no_population):
        out = G.generate(byte_lm, "the cat", json_schema=wrong, max_new_tokens=400)
        assert out.finish_reason == "grammar" and valid(out, wrong) and not lmkit.exercises.check("07.3", out)
