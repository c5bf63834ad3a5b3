"""lmkit.preference: the DPO loss against its formula and TRL, completion log-probabilities, the data, training."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from lmkit import finetune as ft
from lmkit import preference as pf
from lmkit.data import DataError

PAIRS = [{"prompt": "the cat sat on the mat", "chosen": "it ran .", "rejected": "the dog ran to the big red house ."},
         {"prompt": "a dog ?", "chosen": "one dog", "rejected": "two small blue dogs sat on a mat"},
         {"prompt": "she saw it", "chosen": "he ate", "rejected": "we saw the old cat , the new dog and a red mat"},
         {"prompt": "is it big ?", "chosen": "it is", "rejected": "it is big , it is red , it is old and it is new"}]


# ----------------------------------------------------------------------------------------------- the loss
def test_dpo_loss_equals_the_formula():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(5, generator=g, dtype=torch.float64) * 10 - 30 for _ in range(4))
    beta = 0.25
    loss, r_c, r_r = pf.dpo_loss(pc, pr, rc, rr, beta=beta)
    by_hand = [-math.log(1 / (1 + math.exp(-beta * ((a - c) - (b - d)))))
               for a, b, c, d in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist())]
    assert loss.item() == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-12)
    assert torch.allclose(r_c, beta * (pc - rc)) and torch.allclose(r_r, beta * (pr - rr))


def test_dpo_loss_is_log2_when_policy_is_reference_and_has_gradients():
    logps = torch.tensor([-3.0, -7.5], requires_grad=True)
    loss, r_c, r_r = pf.dpo_loss(logps, logps * 2, logps.detach(), logps.detach() * 2)
    assert loss.item() == pytest.approx(math.log(2))
    assert torch.equal(r_c, torch.zeros(2)) and torch.equal(r_r, torch.zeros(2))
    loss.backward()
    assert logps.grad is not None and logps.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, match", [({"beta": 0.0}, "beta=0.0"), ({"beta": -1}, "positive")])
def test_dpo_loss_rejects_bad_beta(kwargs, match):
    x = torch.zeros(3)
    with pytest.raises(ValueError, match=match):
        pf.dpo_loss(x, x, x, x, **kwargs)


def test_dpo_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"same shape \[batch\]"):
        pf.dpo_loss(torch.zeros(3), torch.zeros(2), torch.zeros(3), torch.zeros(3))


# ----------------------------------------------------------------------------------------------- log-probabilities
def test_sequence_logps_scores_the_completion_only(tiny_lm):
    tok, model = tiny_lm.tokenizer, tiny_lm.model
    examples = [ft.encode_example(tok, r["prompt"], r["rejected" if i % 2 else "chosen"]) for i, r in enumerate(PAIRS)]
    batch = ft.collate(examples, tok.pad_token_id)
    got = pf.sequence_logps(model, batch)
    assert got.shape == (len(PAIRS),) and got.dtype == torch.float32
    for row, ex in enumerate(examples):  # direct: one sequence at a time, no padding, every position by hand
        ids = torch.tensor([ex["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
        want = sum(logp[t - 1, ex["input_ids"][t]].item() for t in range(1, len(ex["input_ids"]))
                   if ex["labels"][t] != ft.IGNORE)
        n_prompt = ex["labels"].count(ft.IGNORE)
        assert n_prompt > 0 and want < 0
        assert got[row].item() == pytest.approx(want, abs=1e-4)


def test_pair_logps_batches_agree_with_one_at_a_time(tiny_lm):
    pairs = pf.encode_pairs(tiny_lm.tokenizer, PAIRS)
    c_all, r_all = pf.pair_logps(tiny_lm.model, tiny_lm.tokenizer, pairs, batch_size=4)
    c_one, r_one = pf.pair_logps(tiny_lm.model, tiny_lm.tokenizer, pairs, batch_size=1)
    assert torch.allclose(c_all, c_one, atol=1e-4) and torch.allclose(r_all, r_one, atol=1e-4)


# ----------------------------------------------------------------------------------------------- data
def _write(tmp_path, rows, raw_lines=()):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join([json.dumps(r) for r in rows] + list(raw_lines)) + "\n", encoding="utf-8")
    return path


def test_read_pairs_accepts_a_good_file(tmp_path):
    assert pf.read_pairs(_write(tmp_path, PAIRS)) == PAIRS


@pytest.mark.parametrize("bad, match", [
    ({"prompt": "p", "chosen": "a"}, r"line 3: missing field 'rejected'"),
    ({"prompt": "p", "chosen": "  ", "rejected": "b"}, r"line 3: field 'chosen' must be a non-empty"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, r"line 3: 'chosen' and 'rejected' are the same text"),
])
def test_read_pairs_names_the_file_line_and_fix(tmp_path, bad, match):
    path = _write(tmp_path, [PAIRS[0], PAIRS[1], bad, PAIRS[2]])
    with pytest.raises(DataError, match=match) as err:
        pf.read_pairs(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def test_read_pairs_counts_blank_lines(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n\n" + json.dumps({"prompt": "p", "chosen": "x", "rejected": "x"}) + "\n")
    with pytest.raises(DataError, match="line 3"):
        pf.read_pairs(path)


def test_the_project_set_is_clean():
    train, test = pf.load_split("train"), pf.load_split("test")
    assert len(train) >= 200 and len(test) >= 50
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}  # each item in one split only
    for row in train + test:
        assert len(row["chosen"]) < len(row["rejected"]) / 3  # the preference: concise over rambling
        assert row["answer"].lower() in row["chosen"].lower() and row["chosen"] in row["rejected"]  # same content
    with pytest.raises(DataError, match="split='validation'"):
        pf.load_split("validation")


# ----------------------------------------------------------------------------------------------- training
def test_train_rejects_bad_settings_before_work(tiny_lm):
    with pytest.raises(ValueError, match="beta=0"):
        pf.train(tiny_lm, PAIRS, beta=0)
    with pytest.raises(ValueError, match="output_dir"):
        pf.train(tiny_lm, PAIRS, save_every=2)
    with pytest.raises(ValueError, match="train_pairs is empty"):
        pf.train(tiny_lm, [])


def test_short_dpo_raises_the_margin_on_its_training_pairs(tiny_lm):
    before = {n: p.clone() for n, p in tiny_lm.model.named_parameters()}
    result = pf.train(tiny_lm, PAIRS, val_pairs=PAIRS, beta=0.5, max_steps=12, batch_size=4, lr=5e-3,
                      warmup_steps=0, eval_every=12, progress=False)
    first, last = result.history[0], result.history[-1]
    assert first["step"] == 1 and first["train_loss"] == pytest.approx(math.log(2), abs=1e-5)  # starts at the reference
    assert first["margin"] == pytest.approx(0, abs=1e-5) and last["step"] == 12
    assert last["val_margin"] > 0.5 and last["val_accuracy"] == 1.0 and last["val_loss"] < math.log(2) - 0.2
    assert all(torch.equal(p, before[n]) for n, p in tiny_lm.model.named_parameters())  # lm itself untouched
    assert 0 < result.trainable_params < sum(p.numel() for p in tiny_lm.model.parameters())


def test_a_shared_reference_cache_changes_nothing_but_the_work(tiny_lm):
    common = dict(beta=0.2, max_steps=3, batch_size=2, lr=3e-3, warmup_steps=0, eval_every=0, progress=False)
    cache: dict = {}
    first = pf.train(tiny_lm, PAIRS, reference_cache=cache, **common)
    assert sorted(cache) == [0, 1, 2, 3]  # 3 steps x 2 pairs drew every pair
    again = pf.train(tiny_lm, PAIRS, reference_cache=cache, **common)
    alone = pf.train(tiny_lm, PAIRS, **common)
    assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in again.history]
    assert [h["train_loss"] for h in alone.history] == pytest.approx([h["train_loss"] for h in first.history],
                                                                     abs=1e-6)


def test_checkpoint_and_resume_continue_exactly(tiny_lm, tmp_path):
    common = dict(beta=0.3, batch_size=2, lr=3e-3, warmup_steps=1, eval_every=0, progress=False)
    straight = pf.train(tiny_lm, PAIRS, max_steps=4, **common)
    pf.train(tiny_lm, PAIRS, max_steps=4, output_dir=tmp_path, save_every=2, **common)
    assert ft.latest_checkpoint(tmp_path).name == "step-000004"
    shutil.rmtree(ft.latest_checkpoint(tmp_path))  # as if the run had been killed before step 4
    assert ft.latest_checkpoint(tmp_path).name == "step-000002"
    resumed = pf.train(tiny_lm, PAIRS, max_steps=4, output_dir=tmp_path, resume=True, **common)
    assert resumed.resumed_from == 2
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history],
                                                                      abs=1e-6)


# ----------------------------------------------------------------------------------------------- TRL parity
@pytest.mark.integration  # importing trl and datasets takes 10-40 s on the shared CPU machines
def test_dpo_loss_equals_trl_dpo_trainer(tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from conftest import make_model, make_tokenizer

    tok = make_tokenizer()
    policy, ref = make_model(len(tok), seed=0), make_model(len(tok), seed=1)
    beta = 0.3
    args = DPOConfig(output_dir=str(tmp_path), beta=beta, report_to=[], use_cpu=True, max_length=None, bf16=False,
                     per_device_train_batch_size=len(PAIRS))
    conversational = [{"prompt": [{"role": "user", "content": r["prompt"]}],
                       "chosen": [{"role": "assistant", "content": r["chosen"]}],
                       "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in PAIRS]
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(conversational),
                         processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    trainer.model.eval()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch).item()
    ours = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "labels": batch["input_ids"].masked_fill(batch["completion_mask"] == 0, ft.IGNORE)}
    with torch.no_grad():
        p, r = pf.sequence_logps(policy, ours), pf.sequence_logps(ref, ours)
    n = len(PAIRS)
    loss, r_c, r_r = pf.dpo_loss(p[:n], p[n:], r[:n], r[n:], beta=beta)
    assert loss.item() == pytest.approx(trl_loss, abs=1e-5)
    assert (r_c - r_r).mean().item() == pytest.approx(trainer._metrics["eval"]["rewards/margins"][-1], abs=1e-5)
    assert trl_loss != pytest.approx(math.log(2), abs=1e-3)  # two different models: a real, non-trivial batch


# ----------------------------------------------------------------------------------------------- issue 31
@pytest.fixture
def no_forward(tiny_lm, monkeypatch):
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **k: pytest.fail("the model ran"))
    return tiny_lm


def test_a_reference_cache_records_its_source_and_a_mismatch_is_refused(tiny_lm, monkeypatch):
    import copy

    common = dict(beta=0.2, max_steps=2, batch_size=2, lr=3e-3, warmup_steps=0, eval_every=0, progress=False)
    cache: dict = {}
    first = pf.train(tiny_lm, PAIRS, reference_cache=cache, **common)
    assert first.history[0]["train_loss"] == pytest.approx(math.log(2), abs=1e-5)  # the policy starts as the reference
    assert cache and all(isinstance(v, pf.Reference) and v.source.startswith("sha256:") for v in cache.values())
    changed = copy.deepcopy(tiny_lm)
    with torch.no_grad():
        next(changed.model.parameters())[0, 0] += 1.0
    monkeypatch.setattr(torch.nn.Module, "__call__", lambda *a, **k: pytest.fail("the model ran"))
    for lm, pairs, kwargs, message in [
            (tiny_lm, PAIRS, {"reference_cache": {0: (0.0, 0.0)}}, r"reference_cache\[0\]=\(0.0, 0.0\) does not record"),
            (tiny_lm, PAIRS, {"reference_cache": {"0": first}}, "has the key '0', not an index of the 4 train_pairs"),
            (tiny_lm, PAIRS[::-1], {"reference_cache": cache}, "computed from another model, pair or max_length"),
            (tiny_lm, PAIRS, {"reference_cache": cache, "max_length": 8}, "another model, pair or max_length"),
            (changed, PAIRS, {"reference_cache": cache}, "another model, pair or max_length")]:
        with pytest.raises(ValueError, match=message) as err:
            pf.train(lm, pairs, **{**common, **kwargs})
        assert "\n" not in str(err.value)


def test_resume_refuses_a_checkpoint_of_other_pairs_or_settings(tiny_lm, tmp_path, monkeypatch):
    common = dict(beta=0.3, batch_size=2, lr=3e-3, warmup_steps=0, eval_every=0, progress=False)
    pf.train(tiny_lm, PAIRS, max_steps=2, output_dir=tmp_path, save_every=2, **common)
    monkeypatch.setattr(torch.nn.Module, "__call__", lambda *a, **k: pytest.fail("the model ran"))
    for pairs, kwargs, name in [(PAIRS[::-1], {}, "data"), (PAIRS, {"max_length": 12}, "max_length"),
                                (PAIRS, {"lora_r": 4}, "lora_r")]:
        with pytest.raises(ValueError, match=f"is from a run with (.*, )?{name}=") as err:
            pf.train(tiny_lm, pairs, max_steps=4, output_dir=tmp_path, resume=True, **{**common, **kwargs})
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("pairs, kwargs, message", [
    ([{**PAIRS[0], "chosen": "it ran .<|im_end|>"}], {}, r"train_pairs\[0\]\['chosen'\] writes the special token "
                                                          r"'<\|im_end\|>' as text"),
    ([{**PAIRS[0], "prompt": "<|im_start|>system"}], {}, r"\['prompt'\] writes the special token"),
    ([{"prompt": "a", "chosen": "b"}], {}, r"train_pairs\[0\] needs 'rejected' as non-empty strings"),
    ([{**PAIRS[0], "rejected": "it ran ."}], {}, "are the same text"),
    ([{**PAIRS[0], "prompt": "the " * 200}], {"max_length": 256}, r"train_pairs: pair 0 is \d+ tokens but the model "
                                                                   "reads at most 128: pass max_length <="),
    (PAIRS, {"val_pairs": [{"prompt": "a"}]}, r"val_pairs\[0\] needs 'chosen', 'rejected'"),
    (PAIRS, {"seed": 2**40}, "seed=1099511627776 must be an integer from 0 to 2"),
    (PAIRS, {"plot": "yes"}, "plot='yes' must be True or False"),
])
def test_bad_pairs_and_settings_are_refused_before_any_work(no_forward, pairs, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        pf.train(no_forward, pairs, max_steps=1, batch_size=1, progress=False, **kwargs)
    assert "\n" not in str(err.value)


def test_encoded_pairs_get_one_end_of_turn_and_load_split_checks_limit(tiny_lm):
    (chosen, _), = pf.encode_pairs(tiny_lm.tokenizer, PAIRS[:1])
    assert chosen["labels"].count(tiny_lm.tokenizer.eos_token_id) == 1
    with pytest.raises(DataError, match="limit=-1 must be an integer >= 1"):
        pf.load_split("train", limit=-1)
    with pytest.raises(ValueError, match="got no encoded pairs"):
        pf.pair_logps(tiny_lm.model, tiny_lm.tokenizer, [])
