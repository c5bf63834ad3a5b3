"""lmkit.logprobs: the one prompt + completion encoding, padding and completion log-probability of the package."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lmkit import checks
from lmkit import logprobs as lp

TEXT = "the cat sat on the mat . the dog ran to the big red house . she saw a small blue cat and it was old ."


@pytest.fixture(scope="module")
def bpe():
    """A byte-level BPE tokenizer trained on one line: spaces belong to the token after them (" mat" != "mat")."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator([TEXT] * 20, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>", "<bos>"],
                                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", bos_token="<bos>")


def ids(tok, text):
    return tok(text, add_special_tokens=False).input_ids


def plain_logprob(model, context_ids, completion_ids):
    """log P(completion | context) from one forward pass over the joined ids, no padding, every logit computed."""
    whole = torch.tensor([context_ids + completion_ids])
    with torch.no_grad():
        logp = F.log_softmax(model(whole).logits[0].float(), dim=-1)
    n = len(context_ids)
    return sum(logp[n - 1 + i, t].item() for i, t in enumerate(completion_ids))


# ----------------------------------------------------------------------------------------------- encoding
def test_harness_rule_moves_trailing_spaces_and_takes_the_tail(bpe):
    ctx, comp = lp.encode_completion(bpe, "the cat sat on the ", "mat")
    assert ctx == ids(bpe, "the cat sat on the") and comp == ids(bpe, " mat")
    whole = ids(bpe, "the cat sat on the mat")
    assert ctx + comp == whole  # the tokens the model reads in the whole text
    ctx, comp = lp.encode_completion(bpe, "", "the cat")
    assert ctx == [bpe.bos_token_id] and comp == ids(bpe, "the cat")


def test_apart_rule_keeps_each_text_as_its_own_tokens(bpe):
    ctx, comp = lp.encode_completion(bpe, "the cat sat on the ", "mat", rule="apart")
    assert ctx == ids(bpe, "the cat sat on the ") and comp == ids(bpe, "mat")
    assert (ctx, comp) != lp.encode_completion(bpe, "the cat sat on the ", "mat")  # the rules differ here
    assert lp.encode_completion(bpe, "", "the cat", rule="apart") == ([], ids(bpe, "the cat"))


def test_eos_and_max_length_cut_the_prompt_first(bpe):
    ctx, comp = lp.encode_completion(bpe, "the cat sat on the", " mat", rule="apart", eos=True)
    assert comp == ids(bpe, " mat") + [bpe.eos_token_id]
    long = " ".join(["the big red house"] * 10)
    ctx, comp = lp.encode_completion(bpe, long, " the cat sat", rule="apart", eos=True, max_length=6)
    assert len(ctx) + len(comp) == 6 and comp == ids(bpe, " the cat sat") + [bpe.eos_token_id]
    assert ctx == ids(bpe, long)[-len(ctx):]  # the end of the prompt survives
    ctx, comp = lp.encode_completion(bpe, "the", " cat sat on the mat", rule="apart", max_length=3)
    assert ctx == [] and comp == ids(bpe, " cat sat on the mat")[:3]  # no room left: the answer's end is cut


def test_labelled_example_masks_the_context():
    assert lp.labelled_example([5, 6], [7, 8]) == {"input_ids": [5, 6, 7, 8], "labels": [lp.IGNORE] * 2 + [7, 8]}


@pytest.mark.parametrize("kwargs, message", [
    ({"rule": "lm_eval"}, "rule='lm_eval' is not one of 'harness', 'apart'"),
    ({"max_length": 1}, "max_length=1 must be an integer >= 2"),
    ({"max_length": True}, "max_length=True must be an integer"),
    ({"eos": 1}, "eos=1 must be True or False"),
])
def test_encoding_refuses_bad_settings_in_one_line(bpe, kwargs, message):
    with pytest.raises(checks.CheckError, match=message) as err:
        lp.encode_completion(bpe, "the cat", " sat", **kwargs)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="completion must be a string"):
        lp.encode_completion(bpe, "the cat", None)


# ----------------------------------------------------------------------------------------------- padding
def test_pad_right_and_left_equal_the_hand_written_padding():
    examples = [{"input_ids": [5, 6, 7], "labels": [lp.IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    right = lp.pad(examples, 1)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["labels"].tolist() == [[lp.IGNORE, 6, 7], [8, lp.IGNORE, lp.IGNORE]]
    left = lp.pad(examples, 1, side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [1, 1, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert left["labels"].tolist() == [[lp.IGNORE, 6, 7], [lp.IGNORE, lp.IGNORE, 8]]
    assert all(t.dtype == torch.long for t in right.values())


def test_pad_id_is_the_pad_token_else_eos(tiny_lm, bpe):
    tok = tiny_lm.tokenizer
    assert lp.pad_id(tok) == tok.pad_token_id != tok.eos_token_id
    assert bpe.pad_token_id is None and lp.pad_id(bpe) == bpe.eos_token_id
    assert lp.pad([{"input_ids": [5]}, {"input_ids": [5, 6]}], bpe)["input_ids"][0, 1] == bpe.eos_token_id

    class Bare:
        pad_token_id = eos_token_id = None

    with pytest.raises(checks.CheckError, match="neither pad_token_id nor eos_token_id"):
        lp.pad_id(Bare())


@pytest.mark.parametrize("examples, value, side, message", [
    ([], 0, "right", "no examples"),
    ([{"input_ids": [1]}], 0, "middle", "side='middle' is not one of"),
    ([{"input_ids": [1]}], -1, "right", "value=-1 must be an integer >= 0"),
    ([{"input_ids": [1], "weights": [1]}], 0, "right", "knows only"),
    ([{"input_ids": [1, 2], "labels": [1]}], 0, "right", "each as long as its input_ids"),
    ([{"input_ids": [1]}, {"input_ids": [1], "labels": [1]}], 0, "right", "example 1 has keys"),
])
def test_pad_refuses_bad_input_in_one_line(examples, value, side, message):
    with pytest.raises(checks.CheckError, match=message) as err:
        lp.pad(examples, value, side=side)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------- one batch
def test_labelled_positions_keep_only_what_predicts_a_label():
    labels = torch.tensor([[lp.IGNORE, lp.IGNORE, 7, 8, lp.IGNORE], [lp.IGNORE, 5, lp.IGNORE, lp.IGNORE, lp.IGNORE]])
    keep, targets = lp.labelled_positions(labels)
    assert keep.tolist() == [0, 1, 2]  # logits at t predict label t + 1
    assert targets.tolist() == [[lp.IGNORE, 7, 8], [5, lp.IGNORE, lp.IGNORE]]


def test_completion_logprobs_equal_one_plain_pass_per_row(tiny_lm):
    tok, model = tiny_lm.tokenizer, tiny_lm.model
    pairs = [lp.encode_completion(tok, c, k, rule="apart") for c, k in
             [("the cat sat on the", " mat ."), ("a dog", " ran to the big red house"), ("one two three", " four")]]
    batch = lp.pad([lp.labelled_example(c, k) for c, k in pairs], tok)
    with torch.no_grad():
        got = lp.completion_logprobs(model, batch)
    assert got.logprob.dtype == torch.float32 and got.n_tokens.tolist() == [len(k) for _, k in pairs]
    assert got.logprob.tolist() == pytest.approx([plain_logprob(model, c, k) for c, k in pairs], abs=1e-4)
    # greedy: the model's own argmax continuation is greedy, another one is not
    ctx = pairs[0][0]
    with torch.no_grad():
        first = int(model(torch.tensor([ctx])).logits[0, -1].argmax())
        second = int(model(torch.tensor([ctx + [first]])).logits[0, -1].argmax())
    other = next(t for t in range(5, len(tok)) if t != second)
    batch = lp.pad([lp.labelled_example(ctx, [first, second]), lp.labelled_example(ctx, [first, other])], tok)
    with torch.no_grad():
        assert lp.completion_logprobs(model, batch).greedy.tolist() == [True, False]


def test_completion_logprobs_are_the_negated_cross_entropy_with_gradients(tiny_lm):
    tok, model = tiny_lm.tokenizer, tiny_lm.model
    batch = lp.pad([lp.labelled_example(*lp.encode_completion(tok, "the cat", " sat on the mat", rule="apart")),
                    {"input_ids": ids(tok, "one two three four five"), "labels": ids(tok, "one two three four five")}],
                   tok)
    scores = lp.completion_logprobs(model, batch)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    want = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
                           ignore_index=lp.IGNORE, reduction="sum")
    assert torch.allclose(-scores.logprob.sum(), want, atol=1e-4)
    assert scores.n_tokens.tolist() == [4, 4]  # the first label of the text row has nothing to predict it
    (-scores.logprob.sum()).backward()
    assert model.model.embed_tokens.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_completion_logprobs_refuse_a_batch_without_labels_before_the_model():
    class NoModel:  # any call would fail differently
        pass

    with pytest.raises(checks.CheckError, match="the batch has no labels"):
        lp.completion_logprobs(NoModel(), {"input_ids": torch.zeros(1, 2), "attention_mask": torch.ones(1, 2)})
    with pytest.raises(checks.CheckError, match=r"labels have shape \(1, 3\) but input_ids \(1, 2\)"):
        lp.completion_logprobs(NoModel(), {"input_ids": torch.zeros(1, 2), "attention_mask": torch.ones(1, 2),
                                           "labels": torch.zeros(1, 3)})


# ----------------------------------------------------------------------------------------------- many pairs
PAIRS = [("the big red dog ran to the house . it was", " old"), ("the big red dog ran to the house . it was", " new"),
         ("the big red dog ran to the house . it was", " a small cat"), ("the big red dog ran to the house . he", " ate"),
         ("the big red dog ran to the house . she saw one two three", " four five"),
         ("the big red dog ran to the house . it was", " old")]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_pair_logprobs_equal_one_plain_pass_per_pair(tiny_folder, attn):
    import lmkit

    lm = lmkit.load(tiny_folder, device="cpu", dtype="float32", attn_implementation=attn)
    encoded = [lp.encode_completion(lm.tokenizer, c, k) for c, k in PAIRS]
    want = [plain_logprob(lm.model, c, k) for c, k in encoded]
    for batch_size in (1, 2, 8):  # a shared prefix (cached), packed rows, padding, every batch size
        got = lp.pair_logprobs(lm.model, encoded, lm.tokenizer, batch_size=batch_size, progress=False)
        assert got.logprob.tolist() == pytest.approx(want, abs=1e-4)
        assert got.n_tokens.tolist() == [len(k) for _, k in encoded]
    assert lp.common_prefix([c for c, _ in encoded]) == len(ids(lm.tokenizer, "the big red dog ran to the house ."))
    no_prefix = [(ids(lm.tokenizer, "a dog"), ids(lm.tokenizer, " sat")), encoded[0]]  # nothing shared: no cache
    got = lp.pair_logprobs(lm.model, no_prefix, 0, batch_size=2, progress=False)
    assert got.logprob.tolist() == pytest.approx([plain_logprob(lm.model, c, k) for c, k in no_prefix], abs=1e-4)


def test_pair_logprobs_greedy_matches_completion_logprobs(tiny_lm):
    encoded = [lp.encode_completion(tiny_lm.tokenizer, c, k) for c, k in PAIRS]
    packed = lp.pair_logprobs(tiny_lm.model, encoded, tiny_lm.tokenizer, progress=False)
    with torch.no_grad():
        plain = lp.completion_logprobs(tiny_lm.model, lp.pad([lp.labelled_example(c, k) for c, k in encoded],
                                                              tiny_lm.tokenizer))
    assert packed.greedy.tolist() == plain.greedy.tolist()
    assert packed.logprob.tolist() == pytest.approx(plain.logprob.tolist(), abs=1e-4)


@pytest.mark.parametrize("pairs, kwargs, message", [
    ([], {}, "got no"),
    ([([1, 2], [3]), ([], [3])], {}, "pair 1 has a context with no tokens"),
    ([([1, 2], [])], {}, "pair 0 has a completion with no tokens"),
    ([([1, 2], [3])], {"batch_size": 0}, "batch_size=0 must be an integer >= 1"),
    ([([1, 2], [3])], {"batch_size": True}, "batch_size=True must be an integer"),
])
def test_pair_logprobs_refuse_bad_input_before_any_work(pairs, kwargs, message):
    class NoModel:
        pass

    with pytest.raises(checks.CheckError, match=message) as err:
        lp.pair_logprobs(NoModel(), pairs, 0, **kwargs)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------- issue 31
def test_a_special_token_written_in_a_completion_is_read_as_text(bpe):
    """"<eos>" typed into a completion is those five characters, not the end-of-text token (TRL #4481's kind)."""
    assert lp.special_tokens_in(bpe, " mat<eos>") == ["<eos>"] and lp.special_tokens_in(bpe, " mat") == []
    for rule in lp.RULES:
        ctx, comp = lp.encode_completion(bpe, "the cat sat on the", " mat<eos>", rule=rule)
        assert bpe.eos_token_id not in comp and bpe.decode(comp) == " mat<eos>"
    # the context of the "apart" rule is the caller's prompt (a chat template): its special tokens stay tokens
    ctx, _ = lp.encode_completion(bpe, "<bos>the cat", " sat", rule="apart")
    assert ctx[0] == bpe.bos_token_id
    with pytest.raises(checks.CheckError, match=r"writes the special token '<eos>' as text: eos=True") as err:
        lp.encode_completion(bpe, "the cat", " mat<eos>", rule="apart", eos=True)
    assert "\n" not in str(err.value)


def test_a_pair_past_the_models_context_is_refused_before_any_work(tiny_lm, monkeypatch):
    limit = tiny_lm.model.config.max_position_embeddings  # 128 positions
    assert lp.context_length(tiny_lm.model) == lp.context_length(tiny_lm) == limit
    the, cat = tiny_lm.tokenizer.convert_tokens_to_ids(["the", "cat"])
    fits = ([the] * (limit - 2), [cat, cat])  # exactly the context: scored as one plain pass scores it
    got = lp.pair_logprobs(tiny_lm.model, [fits], tiny_lm.tokenizer, progress=False)
    assert got.logprob.tolist() == pytest.approx([plain_logprob(tiny_lm.model, *fits)], abs=1e-4)
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **k: pytest.fail("the model ran"))
    long = ([the] * (limit - 1), [cat, cat])
    with pytest.raises(checks.CheckError, match=f"^pair 1 is {limit + 1} tokens but the model reads at most "
                                                f"{limit}: shorten its context") as err:
        lp.pair_logprobs(tiny_lm.model, [fits, long], tiny_lm.tokenizer, progress=False)
    assert "\n" not in str(err.value)
    batch = lp.pad([lp.labelled_example(*long)], tiny_lm.tokenizer)
    with pytest.raises(checks.CheckError, match=f"the batch reaches {limit + 1} positions but the model reads at "
                                                f"most {limit}"):
        lp.completion_logprobs(tiny_lm.model, batch)


def test_max_length_cuts_only_what_does_not_fit(bpe):
    """A prompt that fits is kept whole, even when the room left is less than twice its length (a negative slice
    start once cut it to its last ``room - len(prompt)`` tokens)."""
    prompt, answer = ids(bpe, "the cat sat on the mat . the dog ran"), ids(bpe, " to the house")
    room = len(prompt) + len(answer) + 2
    assert room < 2 * len(prompt)
    assert lp.encode_completion(bpe, "the cat sat on the mat . the dog ran", " to the house", rule="apart",
                                max_length=room) == (prompt, answer)
    ctx, comp = lp.encode_completion(bpe, "the cat sat on the mat . the dog ran", " to the house", rule="apart",
                                     max_length=len(answer) + 3)
    assert ctx == prompt[-3:] and comp == answer
