"""lmkit.training: the one training loop (fit) against a hand-written AdamW loop, accumulation, evaluation, resume,
bad settings in one line; and the methods that run on it (fine-tuning, DPO, distillation) refusing 2.7 and True."""
from __future__ import annotations

import inspect
import math
import shutil

import pytest
import torch
import torch.nn as nn

from lmkit import checks
from lmkit import compress as cp
from lmkit import finetune as ft
from lmkit import preference as pf
from lmkit.training import FitSettings, count_tokens, fit, latest_checkpoint, make_accelerator, make_schedule

W_TRUE = torch.tensor([[1.5, -2.0, 0.5, 3.0]])


class Toy(nn.Module):
    """y = w·x + b with dropout on x, so that resuming must restore the random state too."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.lin, self.drop = nn.Linear(4, 1), nn.Dropout(dropout)

    def forward(self, x):
        return self.lin(self.drop(x)).squeeze(-1)


def toy(seed: int = 0, dropout: float = 0.0) -> Toy:
    torch.manual_seed(seed)
    return Toy(dropout)


def data(n: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x @ W_TRUE.T).squeeze(-1) + 0.1 * torch.randn(n, generator=g)


X, Y = data()


def batch_of(step: int, size: int = 6) -> dict:
    i = (step * size) % len(X)
    return {"x": X[i:i + size], "y": Y[i:i + size]}


def mse(model, batch):
    err = model(batch["x"]) - batch["y"]
    return (err ** 2).mean(), {"mae": err.abs().mean()}


def summed_se(model, batch):
    return ((model(batch["x"]) - batch["y"]) ** 2).sum(), {}


def settings(**kw) -> FitSettings:
    base = dict(max_steps=6, lr=0.1, schedule="linear", warmup_steps=2, weight_decay=0.1, max_grad_norm=0.5,
                progress=False)
    return FitSettings(**{**base, **kw})


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ----------------------------------------------------------------------------------------------- the loop
def test_fit_equals_a_hand_written_adamw_loop():
    """AdamW (decay on the matrix only), warm-up then linear decay, clipping: step for step what fit does."""
    from transformers import get_linear_schedule_with_warmup

    s = settings()
    run = fit(toy(), mse, batch_of, s)
    model = toy()
    groups = [{"params": [model.lin.weight], "weight_decay": s.weight_decay},
              {"params": [model.lin.bias], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=s.lr)
    sched = get_linear_schedule_with_warmup(opt, s.warmup_steps, s.max_steps)
    losses, lrs = [], []
    for step in range(s.max_steps):
        loss, _ = mse(model, batch_of(step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_grad_norm)
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert [h["step"] for h in run.history] == list(range(1, 7))
    assert [h["train_loss"] for h in run.history] == pytest.approx(losses, abs=1e-6)
    assert [h["lr"] for h in run.history] == pytest.approx(lrs) and lrs[0] == 0.0 and lrs[2] == pytest.approx(0.1)
    assert torch.allclose(weights(run.model), weights(model), atol=1e-6)
    assert losses[-1] < losses[0] and all(h["mae"] > 0 for h in run.history)
    assert run.steps_run == 6 and len(run.tokens) == 6 and not run.model.training


def test_weighted_accumulation_equals_one_big_batch():
    """Two micro-batches of 3 with summed losses and a weight of 3 each == one batch of 6: the loss is normalised
    over the whole step, not averaged per micro-batch."""
    one = fit(toy(), summed_se, lambda step: batch_of(step, 6), settings(), weight=lambda b: len(b["y"]))

    def halves(step):
        big = batch_of(step, 6)
        return [{k: v[:3] for k, v in big.items()}, {k: v[3:] for k, v in big.items()}]

    two = fit(toy(), summed_se, halves, settings(), weight=lambda b: len(b["y"]))
    # equal up to float32 rounding: the two sums add the same terms in another order (losses near 16: 1e-6 apart)
    assert [h["train_loss"] for h in two.history] == pytest.approx([h["train_loss"] for h in one.history], rel=1e-6)
    assert torch.allclose(weights(one.model), weights(two.model), atol=1e-6)


def test_an_iterable_of_batches_works_like_a_function_of_the_step():
    by_step = fit(toy(), mse, batch_of, settings())
    by_list = fit(toy(), mse, [batch_of(s) for s in range(6)], settings())
    assert [h["train_loss"] for h in by_list.history] == [h["train_loss"] for h in by_step.history]
    with pytest.raises(ValueError, match="batches ran out at step 3"):
        fit(toy(), mse, [batch_of(s) for s in range(2)], settings())


def test_evaluation_every_n_steps_at_the_end_and_at_the_start():
    calls = []

    def evaluate(model):
        calls.append(model.training)
        return {"val_loss": mse(model, batch_of(0))[0].item()}

    run = fit(toy(), mse, batch_of, settings(max_steps=5, eval_every=2, eval_at_start=True), evaluate=evaluate)
    assert [h["step"] for h in run.history if "val_loss" in h] == [0, 2, 4, 5]
    assert run.history[0]["train_loss"] is None and len(run.history) == 6


@pytest.mark.parametrize("as_list", [False, True])
def test_resume_continues_exactly(tmp_path, as_list):
    """Killed after its step-4 checkpoint was lost, a run resumes at step 2 and ends as an uninterrupted one: same
    losses, same weights, dropout's random numbers included."""
    source = (lambda: [batch_of(s) for s in range(6)]) if as_list else (lambda: batch_of)
    straight = fit(toy(dropout=0.3), mse, source(), settings())
    fit(toy(dropout=0.3), mse, source(), settings(output_dir=tmp_path, save_every=2, keep_checkpoints=0),
        identity={"seed": 0})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000002", "step-000004",
                                                                            "step-000006"]
    for step in (6, 4):  # as if the run had been killed after its step-2 checkpoint
        shutil.rmtree(tmp_path / "checkpoints" / f"step-{step:06d}")
    resumed = fit(toy(seed=5, dropout=0.3), mse, source(), settings(output_dir=tmp_path, resume=True),
                  identity={"seed": 0})
    assert resumed.resumed_from == 2 and resumed.steps_run == 4
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history],
                                                                      abs=1e-6)
    assert torch.allclose(weights(resumed.model), weights(straight.model), atol=1e-6)


def test_a_checkpoint_of_another_run_is_refused_before_it_loads(tmp_path):
    fit(toy(), mse, batch_of, settings(max_steps=2, output_dir=tmp_path, save_every=2), identity={"seed": 0})
    model = toy(seed=3)
    before = weights(model)
    with pytest.raises(ValueError, match=r"from a run with seed=0 \(this run: seed=1\)"):
        fit(model, mse, batch_of, settings(max_steps=4, output_dir=tmp_path, resume=True), identity={"seed": 1})
    assert torch.equal(weights(model), before)


def test_checkpoint_lines_are_printed_only_when_verbose(tmp_path, capsys):
    fit(toy(), mse, batch_of, settings(max_steps=2, output_dir=tmp_path / "a", save_every=1))
    assert "checkpoint" not in capsys.readouterr().out
    fit(toy(), mse, batch_of, settings(max_steps=2, output_dir=tmp_path / "b", save_every=1, verbose=True))
    assert "checkpoint step-000002 saved" in capsys.readouterr().out


def test_what_cannot_train_fails_in_one_line():
    frozen = toy().requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter that requires grad"):
        fit(frozen, mse, batch_of, settings())
    with pytest.raises(ValueError, match="step 1 weighs 0.0"):
        fit(toy(), summed_se, batch_of, settings(), weight=lambda b: 0)


@pytest.mark.parametrize("field, value", [("max_steps", 2.7), ("max_steps", True), ("max_steps", 0),
                                          ("warmup_steps", 1.5), ("eval_every", True), ("save_every", -1),
                                          ("lr", 0), ("lr", float("nan")), ("schedule", "cosin"),
                                          ("max_grad_norm", -1.0), ("resume", 1), ("progress", "yes")])
def test_bad_settings_are_one_line_errors(field, value):
    with pytest.raises(checks.CheckError, match=f"^{field}=") as err:
        fit(toy(), mse, batch_of, settings(**{field: value}))
    assert "\n" not in str(err.value)


def test_checkpoints_need_an_output_dir():
    with pytest.raises(ValueError, match="need output_dir"):
        settings(save_every=2).check()


def test_make_schedule_names_functions_and_configs():
    def lrs(sched, n):
        out = []
        for _ in range(n):
            out.append(sched.get_last_lr()[0])
            sched.optimizer.step()
            sched.step()
        return out

    def opt():
        return torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)

    cosine = lrs(make_schedule(opt(), "cosine", 2, 6), 7)
    assert cosine[:3] == pytest.approx([0.0, 0.5, 1.0]) and cosine[-1] == pytest.approx(0.0, abs=1e-12)
    assert lrs(make_schedule(opt(), "constant", 1), 4) == pytest.approx([0.0, 1.0, 1.0, 1.0])
    assert lrs(make_schedule(opt(), lambda s: 0.5 ** s), 3) == pytest.approx([1.0, 0.5, 0.25])
    cfg = ft.TrainConfig(schedule="linear", warmup_steps=1, max_steps=3)
    assert lrs(make_schedule(opt(), cfg), 4) == pytest.approx([0.0, 1.0, 0.5, 0.0])
    assert ft.make_schedule is make_schedule
    with pytest.raises(ValueError, match="schedule='cosin'.*did you mean 'cosine'"):
        make_schedule(opt(), "cosin", 0, 3)


def test_count_tokens():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert count_tokens({"input_ids": torch.zeros(2, 3, dtype=torch.long), "attention_mask": mask}) == 3
    assert count_tokens({"chosen": {"attention_mask": mask}, "rejected": {"attention_mask": mask}}) == 6
    assert count_tokens(torch.zeros(4, 5, dtype=torch.long)) == 20 and count_tokens(torch.zeros(3)) == 0
    assert count_tokens([{"attention_mask": mask}, "text"]) == 3


def test_make_accelerator_follows_the_device():
    assert make_accelerator(device="cpu").device.type == "cpu"


def test_an_on_policy_method_fits_too():
    """GRPO's shape: each step samples a group of actions from the CURRENT policy, rewards them, normalises the
    rewards within the group (the advantages) and takes a policy-gradient step; the batch source reads the model."""

    class Policy(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = nn.Parameter(torch.zeros(4))

    policy, gen = Policy(), torch.Generator().manual_seed(0)

    def rollouts(step: int) -> dict:
        with torch.no_grad():
            actions = torch.multinomial(policy.logits.softmax(-1), 16, replacement=True, generator=gen)
        reward = (actions == 2).float()
        return {"actions": actions, "advantage": (reward - reward.mean()) / (reward.std() + 1e-6)}

    def pg_loss(model, batch):
        logp = model.logits.log_softmax(-1)[batch["actions"]]
        return -(batch["advantage"] * logp).mean(), {"reward": (batch["actions"] == 2).float().mean()}

    run = fit(policy, pg_loss, rollouts, settings(max_steps=25, lr=0.1, schedule="constant", warmup_steps=0,
                                                  weight_decay=0.0, max_grad_norm=1.0))
    assert run.model.logits.softmax(-1)[2] > 0.8
    assert run.history[-1]["reward"] > run.history[0]["reward"]


# ----------------------------------------------------------------------------------------------- the methods on it
def test_the_methods_bring_a_loss_not_a_loop():
    """Fine-tuning, DPO and distillation have no optimizer, backward pass or checkpoint code of their own."""
    for fn in (ft.train, pf.train, cp.distill):
        source = inspect.getsource(inspect.getmodule(fn))
        for loop_part in ("AdamW(", ".backward(", "clip_grad_norm_(", "save_checkpoint(", "load_checkpoint("):
            assert loop_part not in source, f"{fn.__module__} writes {loop_part} again: use lmkit.training.fit"


def test_result_classes_have_distinct_names_and_the_old_ones_still_import():
    from lmkit.finetune.loop import Result as FinetuneOld
    from lmkit.preference import Result as DPOOld

    assert FinetuneOld is ft.FinetuneResult and ft.Result is ft.FinetuneResult
    assert DPOOld is pf.DPOResult and pf.DPOResult.__name__ != ft.FinetuneResult.__name__


@pytest.mark.parametrize("name", ["max_steps", "micro_batch_size", "grad_accum", "lora_r", "eval_every"])
@pytest.mark.parametrize("value", [2.7, True])
def test_train_config_refuses_fractions_and_booleans(name, value):
    with pytest.raises(ValueError, match=f"^{name}={value!r} must be an integer") as err:
        ft.TrainConfig.from_dict({name: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["max_steps", "batch_size", "lora_r", "warmup_steps", "eval_every"])
@pytest.mark.parametrize("value", [2.7, True])
def test_dpo_refuses_fractions_and_booleans_before_work(tiny_lm, name, value, monkeypatch):
    monkeypatch.setattr(pf, "encode_pairs", lambda *a, **k: pytest.fail("encoded before the check"))
    pairs = [{"prompt": "a", "chosen": "b", "rejected": "c d"}]
    with pytest.raises(ValueError, match=f"^{name}={value!r} must be an integer") as err:
        pf.train(tiny_lm, pairs, **{name: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, match", [({"steps": 2.7}, "steps=2.7"), ({"steps": True}, "steps=True"),
                                           ({"block_size": True}, "block_size=True"), ({"alpha": 1.5}, "alpha=1.5"),
                                           ({"temperature": 0}, "temperature=0"), ({"lr": -1.0}, "lr=-1.0")])
def test_distill_refuses_bad_settings_before_a_step(kwargs, match):
    teacher = toy_llama()
    student = cp.shallow_copy(teacher, [0])
    before = weights(student)
    ids = torch.arange(4, 60).repeat(4)
    with pytest.raises(ValueError, match=match):
        cp.distill(student, teacher, ids, **{"steps": 2, "block_size": 8, "progress": False, **kwargs})
    assert torch.equal(weights(student), before)
    assert student.get_input_embeddings().weight.requires_grad


def toy_llama():
    from conftest import make_model

    return make_model(64, hidden_size=32, intermediate_size=64)


def test_distill_losses_are_the_loops_history():
    teacher = toy_llama()
    student = cp.shallow_copy(teacher, [0])
    ids = torch.randint(4, 64, (500,), generator=torch.Generator().manual_seed(0))
    losses = cp.distill(student, teacher, ids, steps=3, block_size=8, batch_size=2, alpha=0.5, progress=False)
    assert len(losses) == 3 and all(math.isfinite(x) and x > 0 for x in losses)
    assert not student.training and student.get_input_embeddings().weight.requires_grad


def test_a_checkpoint_on_other_frozen_weights_is_refused(tmp_path):
    """A checkpoint holds only the trainable weights (a LoRA run's adapters): resumed on another frozen base, the
    run would continue on a model it never trained."""
    def half_frozen(seed: int = 0) -> Toy:
        model = toy(seed)
        model.lin.bias.requires_grad_(False)
        return model

    fit(half_frozen(), mse, batch_of, settings(max_steps=2, output_dir=tmp_path, save_every=2), identity={"seed": 0})
    same = fit(half_frozen(), mse, batch_of, settings(max_steps=3, output_dir=tmp_path, resume=True),
               identity={"seed": 0})
    assert same.resumed_from == 2
    other = half_frozen()
    with torch.no_grad():
        other.lin.bias += 1.0
    with pytest.raises(ValueError, match=r"is from a run with frozen_weights='sha256:[0-9a-f]{16}' \(this run: "
                                         r"frozen_weights='sha256:") as err:
        fit(other, mse, batch_of, settings(max_steps=4, output_dir=tmp_path, resume=True), identity={"seed": 0})
    assert "\n" not in str(err.value)
