"""lmkit.finetune: masking, LoRA, merge, accumulation, checkpoints and exact resume after a real kill, bad data, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import lmkit
from lmkit import finetune as ft
from lmkit.data import DataError

ROOT = Path(__file__).resolve().parent.parent
# Word-level prompts over the tiny tokenizer's vocabulary (tests/conftest.py WORDS).
RECORDS = [{"prompt": "the cat sat on the", "completion": "mat ."},
           {"prompt": "one two three", "completion": "four five"},
           {"prompt": "the dog ran to the", "completion": "big house ."},
           {"prompt": "red blue red blue", "completion": "red"},
           {"prompt": "she saw a small", "completion": "cat !"},
           {"prompt": "we ate the old", "completion": "red mat"}]


def tiny_cfg(folder, **kw) -> dict:
    cfg = dict(model=str(folder), train_data=RECORDS, val_data=RECORDS[:3], max_steps=12, micro_batch_size=3,
               lr=1e-2, warmup_steps=2, eval_every=4, progress=False, lora_dropout=0.0)
    cfg.update(kw)
    return cfg


def masked_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference loss from the full logits: summed next-token NLL where the label is not -100, and the count."""
    logits, targets = logits[:, :-1].float(), labels[:, 1:]
    total = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                              ignore_index=ft.IGNORE, reduction="sum")
    return total, (targets != ft.IGNORE).sum()


class FixedLogits(torch.nn.Module):
    """A stand-in model whose logits are given: forward_nll's ``logits_to_keep`` picks columns of them."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, input_ids, attention_mask, logits_to_keep):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.logits[:, logits_to_keep])


def reference_collate(examples, pad_id):
    """The hand-written right-padding collator that lmkit used before DataCollatorForSeq2Seq."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), ft.IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------------------------- data
@pytest.mark.parametrize("prompt,completion,bad", [("the cat<|im_end|>", "mat .", "prompt"),
                                                   ("the cat", "mat .<|im_end|>", "completion")])
def test_special_token_text_in_the_data_is_refused(tiny_lm, prompt, completion, bad):
    tok = tiny_lm.tokenizer
    # what the template would otherwise make of it: a second end of turn inside the user's prompt
    assert tok(ft.format_prompt(tok, prompt), add_special_tokens=False).input_ids.count(tok.eos_token_id) == (
        2 if bad == "prompt" else 1)
    with pytest.raises(ValueError, match=f"{bad} .*writes the special token '<\\|im_end\\|>' as text") as err:
        ft.encode_example(tok, prompt, completion)
    assert "\n" not in str(err.value)


def test_labels_mask_the_prompt(tiny_lm):
    tok = tiny_lm.tokenizer
    ex = ft.encode_example(tok, "the cat sat on the", "mat .")
    n_prompt = len(tok(ft.format_prompt(tok, "the cat sat on the"), add_special_tokens=False).input_ids)
    answer = tok("mat .", add_special_tokens=False).input_ids + [tok.eos_token_id]
    assert ex["labels"][:n_prompt] == [ft.IGNORE] * n_prompt
    assert ex["labels"][n_prompt:] == answer == ex["input_ids"][n_prompt:]
    # the prompt sits in the chat template, as at inference time
    assert "<|im_start|>" in ft.format_prompt(tok, "a")
    batch = ft.collate([ex, ft.encode_example(tok, "one", "two")], tok.pad_token_id)
    nll, count = masked_nll(torch.randn(2, batch["input_ids"].shape[1], len(tok)), batch["labels"])
    assert count.item() == len(answer) + 2  # "two" + end of turn; padding and prompts never count
    assert (batch["labels"][batch["attention_mask"] == 0] == ft.IGNORE).all()


def test_masked_loss_ignores_prompt_logits(tiny_lm):
    tok = tiny_lm.tokenizer
    batch = ft.collate([ft.encode_example(tok, "the cat sat", "on the mat")], tok.pad_token_id)
    logits = torch.randn(1, batch["input_ids"].shape[1], len(tok))
    changed = logits.clone()
    first_label = int((batch["labels"][0] != ft.IGNORE).nonzero()[0])
    changed[0, :first_label - 1] += 5 * torch.randn_like(changed[0, :first_label - 1])  # predictions of prompt tokens
    loss = ft.forward_nll(FixedLogits(logits), batch)[0]
    assert torch.equal(loss, ft.forward_nll(FixedLogits(changed), batch)[0])
    changed[0, first_label - 1, batch["labels"][0, first_label]] += 5  # the first answer token's prediction counts
    assert not torch.equal(loss, ft.forward_nll(FixedLogits(changed), batch)[0])


def test_forward_nll_equals_the_full_logits_loss(tiny_lm):
    tok = tiny_lm.tokenizer
    batch = ft.collate([ft.encode_example(tok, "the cat sat on the", "mat ."),
                        ft.encode_example(tok, "one", "two three four")], tok.pad_token_id)
    with torch.no_grad():
        full = masked_nll(tiny_lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                          batch["labels"])
        fast = ft.forward_nll(tiny_lm.model, batch)
    assert fast[1] == full[1] and torch.allclose(fast[0], full[0], atol=1e-4)


def test_shared_prefix_runs_once_and_changes_nothing(tiny_lm):
    """Rows that start alike: the prefix runs once (cache repeated per row), same losses, greedy flags and gradients."""
    from lmkit.logprobs import completion_logprobs

    tok = tiny_lm.tokenizer
    head = "the cat sat on the mat . the dog ran to the big house . one two three"
    batch = ft.collate([ft.encode_example(tok, head + " four", "five"),
                        ft.encode_example(tok, head + " red blue", "red blue red"),
                        ft.encode_example(tok, head, "she saw a small cat")], tok.pad_token_id)
    n = ft.shared_prefix_length(batch)
    first_label = int((batch["labels"] != ft.IGNORE).any(0).nonzero()[0])
    assert ft.loss.MIN_SHARED_PREFIX <= n <= first_label - 1
    assert (batch["input_ids"][:, :n] == batch["input_ids"][:1, :n]).all()
    assert ft.shared_prefix_length({k: v[:1] for k, v in batch.items()}) == 0  # one row: nothing to share
    model = tiny_lm.model
    grads = []
    for fn in (completion_logprobs, ft.shared_prefix_logprobs):
        model.zero_grad(set_to_none=True)
        scores = fn(model, batch)
        (-scores.logprob.sum()).backward()
        grads.append((scores, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])))
    (plain, g_plain), (shared, g_shared) = grads
    model.zero_grad(set_to_none=True)
    assert torch.allclose(plain.logprob, shared.logprob, atol=1e-4) and torch.equal(plain.greedy, shared.greedy)
    assert torch.equal(plain.n_tokens, shared.n_tokens)
    assert torch.allclose(g_plain, g_shared, atol=1e-4, rtol=1e-3)


def test_live_plot_redraws_every_n_steps_and_at_validation(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    drawn = []
    monkeypatch.setattr(ft.LivePlot, "_draw", lambda self, h: drawn.append(len(h)))
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: type("H", (), {"update": lambda s, f: None})())
    plot = ft.LivePlot("t", every=5)
    history = []
    for step in range(1, 13):
        history.append({"step": step, "train_loss": 1.0, "val_loss": 0.5 if step == 7 else None})
        plot.update(history)
    plot.close()
    assert drawn == [0, 5, 7, 10, 12]  # the empty start, every 5th update, the validation at 7, the rest at close
    with pytest.raises(ValueError, match="every"):
        ft.LivePlot("t", every=0)


@pytest.mark.parametrize("pad_id", [0, 2, 49151])
def test_collate_equals_the_hand_written_padding(tiny_lm, pad_id):
    tok = tiny_lm.tokenizer
    examples = [ft.encode_example(tok, r["prompt"], r["completion"]) for r in RECORDS]
    examples += ft.encode_text(tok, "the cat sat on the mat . " * 5, block_size=7)
    for batch in (examples, examples[:1], examples[::-1], examples[2:5]):
        got, want = ft.collate(batch, pad_id), reference_collate(batch, pad_id)
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    side = tok.padding_side
    by_tokenizer = ft.collate(examples, tok)  # a tokenizer gives its pad id, and keeps its own padding side
    assert tok.padding_side == side
    assert torch.equal(by_tokenizer["input_ids"], reference_collate(examples, tok.pad_token_id)["input_ids"])
    with pytest.raises(ValueError, match="no examples"):
        ft.collate([], pad_id)


def test_truncation_keeps_the_answer(tiny_lm):
    ex = ft.encode_example(tiny_lm.tokenizer, " ".join(["the cat"] * 50), "mat", max_length=10)
    assert len(ex["input_ids"]) == 10 and ex["labels"][-2:] == ex["input_ids"][-2:]


def test_example_order_is_a_function_of_the_position():
    full = ft.example_order(7, seed=3, position=0, count=21)
    assert sorted(full[:7]) == list(range(7)) and sorted(full[7:14]) == list(range(7))
    assert full[:7] != full[7:14]  # each epoch reshuffled
    assert ft.example_order(7, seed=3, position=9, count=12) == full[9:]


@pytest.mark.parametrize("lines, problem", [
    (['{"prompt": "a", "completion": "b"}', '{"prompt": "a", "completion": "b"'], "line 2: invalid JSON"),
    (['{"prompt": "a", "completion": "b"}', "", '{"prompt": "a"}'], "line 3: missing field 'completion'"),
    (['{"prompt": "a", "completion": ""}'], "line 1: field 'completion' must be a non-empty string"),
    (['{"prompt": 3, "completion": "b"}'], "line 1: field 'prompt' must be a non-empty string"),
    (['["prompt", "completion"]'], "line 1: a JSON list, not an object"),
    ([], "the file is empty"),
])
def test_bad_data_names_file_line_and_problem(tmp_path, lines, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(DataError) as err:
        ft.read_records(path)
    message = str(err.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_bad_data_fails_before_training(tmp_path, tiny_folder):
    bad = write_jsonl(tmp_path / "val.jsonl", [RECORDS[0], '{"prompt": "x"}'])
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"val\.jsonl, line 2: missing field 'completion'"):
        ft.train(tiny_cfg(tiny_folder, val_data=str(bad), output_dir=str(out), save_every=1))
    assert not (out / "checkpoints").exists()  # not a single step was taken


def test_bad_config_values():
    with pytest.raises(ValueError, match="method='qlora'"):
        ft.TrainConfig.from_dict({"method": "qlora"})
    with pytest.raises(ValueError, match="unknown config key 'learning_rate'"):
        ft.TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="need output_dir"):
        ft.TrainConfig.from_dict({"save_every": 5})


def test_the_project_data_set_is_sound():
    splits = {s: ft.load_split(s) for s in ("train", "validation", "test")}
    dates = {s: {r["completion"] for r in rows} for s, rows in splits.items()}
    assert not dates["train"] & dates["test"] and not dates["train"] & dates["validation"]
    train_formats = {r["format"] for r in splits["train"]}
    assert not train_formats & {r["format"] for r in splits["test"]}  # test formats are never seen in training
    assert not {r["sentence"] for r in splits["train"]} & {r["sentence"] for r in splits["test"]} - {"{date}"}


def test_date_splits_as_a_data_spec(tiny_lm):
    rows = ft.load_split("validation")
    ex = ft.load_examples("dates:validation", tiny_lm.tokenizer, limit=3)
    assert ex == [ft.encode_example(tiny_lm.tokenizer, r["prompt"], r["completion"]) for r in rows[:3]]
    with pytest.raises(DataError, match="split='dev'"):
        ft.load_examples("dates:dev", tiny_lm.tokenizer)


def test_date_splits_without_the_data_folder(monkeypatch, tmp_path):
    """A broken install (no data folder): one line naming the file and the fix."""
    from lmkit import data

    monkeypatch.setattr(data, "DATA_ROOT", tmp_path / "datasets")
    with pytest.raises(DataError, match=r"^data file 'finetune/test\.jsonl' is not in .*reinstall lmkit"):
        ft.load_split("test")


# ----------------------------------------------------------------------------------------------- exercises
def test_exercise_lora_parameter_count(tiny_lm, monkeypatch):
    from peft import LoraConfig, get_peft_model

    from lmkit import exercises
    from lmkit.exercises import ex12

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    fresh = lmkit.load(tiny_lm.model.name_or_path, device="cpu", dtype="float32").model
    for r, targets in ((4, ("q_proj", "v_proj")), (8, ft.LORA_TARGETS)):
        with warnings.catch_warnings():  # peft calls a transformers method that transformers 5 renamed
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(fresh, LoraConfig(r=r, target_modules=list(targets)))
        want = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        assert ex12.lora_parameters(tiny_lm.model.config, r, targets) == want  # the formula agrees with peft
        fresh = peft_model.unload()
        if r == 4:
            assert exercises.check("12.1", want, lm=tiny_lm)
            assert not exercises.check("12.1", want + 1, lm=tiny_lm)
            assert not exercises.check("12.1", 2 * want, lm=tiny_lm)  # r=8 instead of r=4


def test_exercise_masked_fraction(tiny_lm, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    tok = tiny_lm.tokenizer
    batch = ft.collate([ft.encode_example(tok, r["prompt"], r["completion"]) for r in RECORDS], tok.pad_token_id)
    right = (batch["labels"] == ft.IGNORE).float().mean().item()
    assert 0 < right < 1
    assert exercises.check("12.2", right, tokenizer=tok, rows=RECORDS)
    assert not exercises.check("12.2", 1 - right, tokenizer=tok, rows=RECORDS)  # the fraction that carries loss
    prompt_only = sum(lab.count(ft.IGNORE) for lab in (ft.encode_example(tok, r["prompt"], r["completion"])["labels"]
                                                         for r in RECORDS)) / batch["labels"].numel()
    assert not exercises.check("12.2", prompt_only, tokenizer=tok, rows=RECORDS)  # padding forgotten


# ----------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("method, lr, drop", [("lora", 1e-1, 0.2), ("full", 2e-2, 1.0)])
def test_loss_decreases(tiny_folder, method, lr, drop):
    r = ft.train(tiny_cfg(tiny_folder, method=method, lr=lr))
    assert len(r.train_losses) == 12 and len(r.val_losses) == 4  # steps 0, 4, 8, 12
    assert sum(r.train_losses[-3:]) / 3 < r.train_losses[0] - drop
    assert r.val_losses[-1] < r.val_losses[0] - drop
    assert r.history[1]["lr"] < r.history[2]["lr"]  # warm-up


def test_lora_trains_only_the_adapters(tiny_folder):
    base = lmkit.load(tiny_folder, device="cpu", dtype="float32").model.state_dict()
    r = ft.train(tiny_cfg(tiny_folder, max_steps=4))
    trainable = {n for n, p in r.lm.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n in trainable if "lora_A" in n} == set(ft.LORA_TARGETS)
    for name, p in r.lm.model.named_parameters():
        if "lora_B" in name:
            assert p.abs().sum() > 0  # B starts at zero: it has moved
        elif "lora_" not in name:
            key = name.replace("base_model.model.", "").replace("base_layer.", "")
            assert torch.equal(p, base[key]), name
    assert r.trainable_params == sum(p.numel() for n, p in r.lm.model.named_parameters() if "lora_" in n)


def test_merge_equals_unmerged_and_saved_folder_reloads(tiny_folder, tmp_path):
    r = ft.train(tiny_cfg(tiny_folder, max_steps=4))
    ids = r.lm.encode("the cat sat on the mat")
    with torch.no_grad():
        before = r.lm.model(ids).logits
        merged = ft.merge(r.lm)
        assert not any("lora_" in n for n, _ in merged.model.named_parameters())
        assert torch.allclose(merged.model(ids).logits, before, atol=1e-5)
        folder = ft.save(merged, tmp_path / "merged")
        again = lmkit.load(folder, device="cpu", dtype="float32")
        assert torch.allclose(again.model(ids).logits, before, atol=1e-5)


def test_grad_accumulation_matches_a_big_batch(tiny_folder):
    """3 examples x 2 micro-batches == 6 examples at once: the loss is normalised over the whole step's tokens."""
    a = ft.train(tiny_cfg(tiny_folder, method="full", max_steps=3, micro_batch_size=6, grad_accum=1, lr=3e-3))
    b = ft.train(tiny_cfg(tiny_folder, method="full", max_steps=3, micro_batch_size=3, grad_accum=2, lr=3e-3))
    assert a.train_losses == pytest.approx(b.train_losses, abs=1e-5)
    for (n, p), (_, q) in zip(a.lm.model.named_parameters(), b.lm.model.named_parameters()):
        assert torch.allclose(p, q, atol=1e-5), n


def test_greedy_exact_match_agrees_with_generation(tiny_folder):
    r = ft.train(tiny_cfg(tiny_folder, method="full", lr=2e-2, max_steps=30))
    hits = ft.greedy_exact_match(r.lm, RECORDS)
    answers = ft.answer(r.lm, [x["prompt"] for x in RECORDS], max_new_tokens=6)
    tok = r.lm.tokenizer  # the word-level decoder writes "mat ." as "mat."
    assert hits == [a == tok.decode(tok(x["completion"]).input_ids) for a, x in zip(answers, RECORDS)]
    assert 0 < sum(hits) < len(hits)  # both outcomes occur, so the comparison is not vacuous


# ----------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_is_complete_and_tmp_folders_are_ignored(tiny_folder, tmp_path):
    out = tmp_path / "run"
    ft.train(tiny_cfg(tiny_folder, max_steps=6, save_every=2, keep_checkpoints=2, output_dir=str(out)))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["step-000004", "step-000006"]
    files = sorted(p.name for p in (out / "checkpoints" / "step-000006").iterdir())
    assert files == ["optimizer.safetensors", "rng-0.safetensors", "state.json", "weights.safetensors"]
    (out / "checkpoints" / "step-000099.tmp").mkdir()  # a checkpoint being written when the process died
    assert ft.latest_checkpoint(out).name == "step-000006"


def _cli(args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "lmkit.finetune", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_cli_runs_one_step(tiny_folder, tmp_path):
    cfg = write_jsonl(tmp_path / "train.jsonl", RECORDS)
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(tiny_cfg(tiny_folder, train_data=str(cfg), val_data=str(cfg),
                                          output_dir=str(tmp_path / "run"))))
    proc = _cli(["--config", str(config), "--max-steps", "1"])
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["step"] == 1 and summary["train_loss"] > 0 and summary["trainable_params"] > 0
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["step"] == 1


def test_cli_reports_bad_config_in_one_line(tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text('{"method": "qlora"}')
    proc = _cli(["--config", str(config)])
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2 and out.strip() == "error: method='qlora': use 'lora' or 'full'"


def test_killed_run_resumes_exactly(tiny_folder, tmp_path):
    """A real subprocess is killed (SIGKILL) mid-run, resumed from its last checkpoint, and ends where an
    uninterrupted run with the same seed ends: same losses at every later step, same weights."""
    data = write_jsonl(tmp_path / "train.jsonl", RECORDS * 3)
    steps = 30
    base = tiny_cfg(tiny_folder, train_data=str(data), val_data=str(data), max_steps=steps, save_every=2,
                    eval_every=5, micro_batch_size=2, grad_accum=2, lora_dropout=0.1, lr=5e-3)
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(dict(base, output_dir=str(tmp_path / "killed"))))

    proc = _cli(["--config", str(config)])
    for line in proc.stdout:
        if "checkpoint step-000004 saved" in line:
            proc.kill()
            break
    proc.wait(timeout=60)
    assert proc.returncode == -9
    killed_at = ft.latest_checkpoint(tmp_path / "killed")
    assert killed_at is not None and int(killed_at.name[5:]) < steps
    assert not (tmp_path / "killed" / "history.json").exists()  # the run really did not finish

    proc = _cli(["--config", str(config), "--resume"])
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert f"(step {int(killed_at.name[5:])}," in out
    resumed = json.loads((tmp_path / "killed" / "history.json").read_text())

    reference = ft.train(dict(base, output_dir=str(tmp_path / "straight")))
    assert [h["step"] for h in resumed] == [h["step"] for h in reference.history]  # no step lost or repeated
    for got, want in zip(resumed, reference.history):
        for key in ("train_loss", "val_loss", "lr"):
            assert (got.get(key) is None) == (want.get(key) is None)
            if want.get(key) is not None:
                assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), (got["step"], key)
    from safetensors.torch import load_file

    a = load_file(ft.latest_checkpoint(tmp_path / "killed") / "weights.safetensors")
    b = load_file(ft.latest_checkpoint(tmp_path / "straight") / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


# ----------------------------------------------------------------------------------------------- real model
@pytest.mark.integration
def test_real_model_lora_steps_lower_the_date_loss():
    r = ft.train(max_steps=3, max_train_examples=8, max_val_examples=8, micro_batch_size=4, eval_every=3,
                 warmup_steps=1, progress=False)
    assert r.val_losses[-1] < r.val_losses[0]
    assert 0 < r.trainable_params < 0.03 * r.total_params


@pytest.mark.parametrize("content, match", [
    (b'{"method": "qlora"', r"cfg\.json, line 1: invalid JSON .* write one JSON object"),
    (b'["lora"]', r"cfg\.json: a JSON list, not an object"),
    (b'{"method": "lora", "max_steps": 3}\xff', r"cfg\.json: not UTF-8 text"),
    (b"\xef\xbb\xbf" + b'{"method": "qlora"}', r"method='qlora'"),  # BOM accepted: the real problem is named
])
def test_config_files_are_read_like_data_files(tmp_path, content, match):
    path = tmp_path / "cfg.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        ft.as_config(path)
    assert "\n" not in str(err.value)
    path.write_bytes(b'\xef\xbb\xbf{"method": "full", "max_steps": 3}')  # Notepad's UTF-8 with a byte-order mark
    assert ft.as_config(path).method == "full"


def test_text_files_accept_a_bom_and_name_bad_encodings(tiny_lm, tmp_path):
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffthe cat sat on the mat .".encode())
    plain = tmp_path / "plain.txt"
    plain.write_text("the cat sat on the mat .")
    assert ft.load_examples(str(bom), tiny_lm.tokenizer) == ft.load_examples(str(plain), tiny_lm.tokenizer)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("the caf\xe9 sat".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: not UTF-8 text .* save the file as UTF-8"):
        ft.load_examples(str(bad), tiny_lm.tokenizer)


def test_loss_plot_marks_the_best_step_in_its_legend_and_ticks_whole_steps():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = [{"step": s, "train_loss": 1.0 / (s + 1), "val_loss": None} for s in range(1, 21)]
    history += [{"step": s, "train_loss": None, "val_loss": v} for s, v in ((0, 3.0), (5, 1.0), (10, 0.5), (20, 2.0))]
    ax = ft.plot_loss_curves(history)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "lowest validation (step 10)" in labels, labels
    ticks = [t for t in ax.get_xticks() if 0 <= t <= 20]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(ax.figure)


def test_resume_on_other_data_is_refused_before_any_step(tiny_folder, tmp_path):
    out = str(tmp_path / "run")
    ft.train(tiny_cfg(tiny_folder, output_dir=out, max_steps=2, save_every=1, eval_every=0))
    other = [dict(r, completion=r["completion"] + " .") for r in RECORDS]  # one more token in every answer
    with pytest.raises(ValueError, match=r"data='sha256:[0-9a-f]+'.*resume with the same settings, data and model"):
        ft.train(tiny_cfg(tiny_folder, train_data=other, output_dir=out, max_steps=4, save_every=1, eval_every=0,
                          resume=True))
    resumed = ft.train(tiny_cfg(tiny_folder, output_dir=out, max_steps=4, save_every=1, eval_every=0, resume=True))
    assert [h["step"] for h in resumed.history][-2:] == [3, 4]  # the same data resumes
