"""lmkit.rl (notebook 18): pass@k against enumeration, majority vote, GRPO's advantages and loss against
loop-based formulas and against TRL's GRPOTrainer, the task's data and reward, and every bad input."""
from __future__ import annotations

import itertools
import json
import math
import random

import pytest
import torch

from lmkit import rl
from lmkit.checks import CheckError
from lmkit.data import data_file
from lmkit.files import DataError


# ----------------------------------------------------------------------------------------------- pass@k
def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of the k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_enumeration_over_every_subset(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert rl.pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_special_cases_and_large_n():
    assert rl.pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the share correct
    assert rl.pass_at_k(10, 0, 5) == 0.0 and rl.pass_at_k(10, 6, 5) == 1.0
    exact = 1 - math.comb(150, 100) / math.comb(200, 100)  # exact integers; the product form stays finite
    assert rl.pass_at_k(200, 50, 100) == pytest.approx(exact, rel=1e-9)
    assert isinstance(rl.pass_at_k(4, 2, 2), float)


@pytest.mark.parametrize("args, fragment", [
    ((3, 1, 5), "k=5"), ((3, 4, 1), "c=4"), ((3, -1, 1), "c=-1"), ((0, 0, 1), "n=0"), ((3, 1, 0), "k=0"),
    ((3.0, 1, 1), "n=3.0"), ((3, True, 1), "c=True"),
])
def test_pass_at_k_refuses_bad_counts(args, fragment):
    with pytest.raises(CheckError, match=fragment) as err:
        rl.pass_at_k(*args)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------- majority vote
def test_majority_vote():
    assert rl.majority_vote([3, 5, 5, 3, 5]) == 5
    assert rl.majority_vote([3, 5, 5, 3]) == 3  # a tie goes to the answer seen first
    assert rl.majority_vote([5, 3, 3, 5]) == 5
    assert rl.majority_vote([None, None, None, 7]) == 7  # None never wins over a parsed answer
    assert rl.majority_vote([None, 4, None, 2, None]) == 4
    assert rl.majority_vote([None, None]) is None
    assert rl.majority_vote(("a", "b", "b")) == "b"


@pytest.mark.parametrize("bad", [[], (), None, "123", {1: 2}])
def test_majority_vote_refuses_no_answers(bad):
    with pytest.raises(CheckError, match="non-empty list"):
        rl.majority_vote(bad)


# ----------------------------------------------------------------------------------------------- advantages
def test_group_advantages_by_hand():
    r = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    a = rl.group_advantages(r, 3)
    sd1 = math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)  # unbiased std of [1, 0, 0]
    hand = [2 / 3 / (sd1 + 1e-4), -1 / 3 / (sd1 + 1e-4), -1 / 3 / (sd1 + 1e-4)]
    assert a[:3].tolist() == pytest.approx(hand, rel=1e-6)
    assert a[3:].tolist() == pytest.approx([-x for x in hand], rel=1e-6)
    assert rl.group_advantages(r, 3, scale=False).tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3, -2 / 3, 1 / 3,
                                                                            1 / 3])
    assert rl.group_advantages(torch.tensor([2.0, 4.0]), 2).tolist() == pytest.approx(
        [-1 / (math.sqrt(2) + 1e-4), 1 / (math.sqrt(2) + 1e-4)], rel=1e-6)
    assert a.dtype == torch.float32 and a.shape == (6,)


def test_zero_variance_groups_get_zero_advantage():
    a = rl.group_advantages([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0], 3)
    assert torch.isfinite(a).all()
    assert a[:6].tolist() == [0.0] * 6 and (a[6:] != 0).all()
    assert rl.group_advantages([True, True], 2).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("rewards, size, fragment", [
    ([1.0, 0.0, 1.0], 2, "group_size=2 must divide the 3 rewards"), ([1.0, 0.0], 1, "group_size=1"),
    ([1.0, float("nan")], 2, r"rewards\[1\]=nan"), ([1.0, float("inf")], 2, r"rewards\[1\]=inf"),
    ([[1.0, 0.0]], 2, "shape"), ([1.0, 0.0], 2.0, "group_size=2.0"), ([], 2, "divide the 0 rewards"),
])
def test_group_advantages_refuses_bad_input(rewards, size, fragment):
    with pytest.raises(CheckError, match=fragment) as err:
        rl.group_advantages(rewards, size)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------- the loss
def loop_grpo_loss(new, old, adv, mask, clip_eps, beta, ref, aggregation, max_length=None, correction=False):
    """GRPO's loss token by token with Python floats: the formula, independent of the vectorised code."""
    B, T = len(new), len(new[0])
    per = [[0.0] * T for _ in range(B)]
    for i in range(B):
        for t in range(T):
            ratio = math.exp(new[i][t] - old[i][t])
            clipped = min(max(ratio, 1 - clip_eps), 1 + clip_eps)
            loss = -min(ratio * adv[i], clipped * adv[i])
            if beta:
                d = ref[i][t] - new[i][t]
                loss += beta * (math.exp(d) - d - 1) * (ratio if correction else 1.0)
            per[i][t] = loss * mask[i][t]
    if aggregation == "token":
        return sum(map(sum, per)) / max(sum(map(sum, mask)), 1)
    if aggregation == "sequence":
        return sum(sum(per[i]) / max(sum(mask[i]), 1) for i in range(B)) / B
    return sum(map(sum, per)) / (B * (max_length or T))


def random_batch(seed=0, B=6, T=7, group=3):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    new = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.3  # ratios around the clip boundary
    ref = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T) < lengths[:, None]).to(torch.float64)
    rewards = torch.randint(0, 2, (B,), generator=g).double()
    rewards[:group] = 1.0  # the first group has zero variance
    return new, old, ref, mask, rl.group_advantages(rewards, group)


@pytest.mark.parametrize("aggregation", rl.AGGREGATIONS)
@pytest.mark.parametrize("beta, correction", [(0.0, False), (0.04, False), (0.04, True)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grpo_loss_equals_the_loop_formula(aggregation, beta, correction, seed):
    new, old, ref, mask, adv = random_batch(seed)
    ratio = torch.exp(new - old)
    assert ((ratio < 0.8) | (ratio > 1.2)).any() and ((ratio > 0.8) & (ratio < 1.2)).any()  # both sides of the clip
    assert adv.double()[:3].abs().max() == 0 and adv.double()[3:].abs().max() > 0  # a zero-variance group
    ours = rl.grpo_loss(new, old, adv.double(), mask, clip_eps=0.2, beta=beta, logp_ref=ref, aggregation=aggregation,
                        kl_bias_correction=correction)
    loop = loop_grpo_loss(new.tolist(), old.tolist(), adv.double().tolist(), mask.tolist(), 0.2, beta, ref.tolist(),
                          aggregation, correction=correction)
    assert ours.item() == pytest.approx(loop, rel=1e-12, abs=1e-12)
    assert rl.grpo_loss(new, old, adv.double(), mask, aggregation="dr_grpo", max_length=20).item() == \
        pytest.approx(loop_grpo_loss(new.tolist(), old.tolist(), adv.double().tolist(), mask.tolist(), 0.2, 0.0,
                                     None, "dr_grpo", 20), rel=1e-12)


def test_grpo_loss_at_and_beyond_the_clip_boundary():
    """Ratios exactly at 1 +- eps and past it: the gradient stops only where the clipped term is the smaller one."""
    eps = 0.25  # exp(log(1.25)) and exp(log(0.75)) are exact enough to sit on the boundary
    ratios = torch.tensor([[1.0, 1.25, 1.5, 0.75, 0.5]], dtype=torch.float64)
    old = torch.full_like(ratios, -1.0)
    for adv in (1.0, -1.0):
        new = (old + ratios.log()).requires_grad_()
        mask = torch.ones_like(ratios)
        loss = rl.grpo_loss(new, old, torch.tensor([adv], dtype=torch.float64), mask, clip_eps=eps,
                            aggregation="sequence")
        loop = loop_grpo_loss(new.tolist(), old.tolist(), [adv], mask.tolist(), eps, 0.0, None, "sequence")
        assert loss.item() == pytest.approx(loop, rel=1e-12)
        loss.backward()
        grad = new.grad[0].tolist()
        # beyond the boundary in the advantage's direction the clipped term wins: no gradient
        if adv > 0:
            assert grad[2] == 0 and grad[0] != 0 and grad[3] != 0 and grad[4] != 0
        else:
            assert grad[4] == 0 and grad[0] != 0 and grad[1] != 0 and grad[2] != 0
        per_token = [-min(r * adv, min(max(r, 1 - eps), 1 + eps) * adv) for r in ratios[0].tolist()]
        assert loss.item() == pytest.approx(sum(per_token) / 5, rel=1e-12)


def test_grpo_loss_zero_variance_group_and_padding():
    new, old, ref, mask, adv = random_batch(3)
    loss = rl.grpo_loss(new, old, torch.zeros(6, dtype=torch.float64), mask, aggregation="token")
    assert loss.item() == 0.0  # zero advantages, no KL: nothing to learn
    far = new.clone()
    far[mask == 0] += 5.0  # padding never counts, whatever its log-probabilities
    for agg in rl.AGGREGATIONS:
        assert rl.grpo_loss(far, old, adv.double(), mask, beta=0.1, logp_ref=ref, aggregation=agg).item() == \
            pytest.approx(rl.grpo_loss(new, old, adv.double(), mask, beta=0.1, logp_ref=ref,
                                       aggregation=agg).item(), rel=1e-12)
    on_policy = rl.grpo_loss(old, old, adv.double(), mask, aggregation="sequence")  # ratio 1: minus mean advantage
    assert on_policy.item() == pytest.approx(-adv.double().mean().item(), abs=1e-12)


def test_kl_k3():
    new, _, ref, _, _ = random_batch(4)
    kl = rl.kl_k3(new, ref)
    assert (kl >= 0).all() and rl.kl_k3(ref, ref).abs().max() == 0
    d = ref - new
    assert torch.allclose(kl, d.exp() - d - 1)


@pytest.mark.parametrize("change, fragment", [
    (dict(logp_old=torch.zeros(2, 4)), r"logp_old has shape \(2, 4\) but logp_new has \(2, 3\)"),
    (dict(mask=torch.ones(2, 4)), r"mask has shape \(2, 4\)"),
    (dict(advantages=torch.zeros(3)), r"advantages has shape \(3,\) but logp_new has 2 rows"),
    (dict(advantages=torch.zeros(2, 1)), r"advantages has shape \(2, 1\)"),
    (dict(logp_new=torch.zeros(2, 3, 1), logp_old=torch.zeros(2, 3, 1), mask=torch.ones(2, 3, 1)),
     r"logp_new has shape \(2, 3, 1\)"),
    (dict(logp_old=[[0.0] * 3] * 2), "logp_old=.* must be a torch.Tensor"),
    (dict(beta=0.1), "beta=0.1 needs logp_ref"),
    (dict(beta=0.1, logp_ref=torch.zeros(2, 2)), r"logp_ref has shape \(2, 2\)"),
    (dict(beta=-0.1), "beta=-0.1"), (dict(clip_eps=0.0), "clip_eps=0.0"), (dict(clip_eps=1.5), "clip_eps=1.5"),
    (dict(aggregation="mean"), "aggregation='mean'"), (dict(kl_bias_correction=1), "kl_bias_correction=1"),
    (dict(aggregation="dr_grpo", max_length=2), "max_length=2"),
])
def test_grpo_loss_refuses_bad_input(change, fragment):
    args = dict(logp_new=torch.zeros(2, 3), logp_old=torch.zeros(2, 3), advantages=torch.zeros(2),
                mask=torch.ones(2, 3))
    args.update(change)
    with pytest.raises(CheckError, match=fragment) as err:
        rl.grpo_loss(**args)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------- the task
def test_extract_answer_and_reward():
    assert rl.extract_answer("So she has 20 + 9 = 29 coins now.") == 29
    assert rl.extract_answer("The answer is -3.") == -3
    assert rl.extract_answer("It costs 1,024 coins") == 1024
    assert rl.extract_answer("no number here") is None and rl.extract_answer("") is None
    assert rl.extract_answer("She has 12.") == 12 and rl.extract_answer("12.0 pens") == 12
    assert rl.extract_answer("about 2.5") is None and rl.reward("7 / 2 = 3.5", 5) == 0.0  # not read as 5
    assert rl.extract_answer("-0.5") is None and rl.extract_answer("12345678901234567891") == 12345678901234567891
    assert rl.extract_answer("7-2=5") == 5 and rl.extract_answer("3, 4, 5") == 5
    assert rl.reward("20 + 9 = 29", 29) == 1.0 and rl.reward("20 + 9 = 28", 29) == 0.0
    assert rl.reward("I do not know", 29) == 0.0
    assert rl.reward("29 apples, and 3 more", 29) == 0.0  # the last number counts
    with pytest.raises(CheckError, match="text=5"):
        rl.extract_answer(5)
    with pytest.raises(CheckError, match="answer='29'"):
        rl.reward("29", "29")


def test_prompt():
    item = rl.load_split("test", limit=1)[0]
    assert rl.prompt(item) == item["question"] + rl.INSTRUCTION == rl.prompt(item["question"])
    with pytest.raises(CheckError, match="question"):
        rl.prompt({"question": " "})


def _lines(split):
    return [json.loads(line) for line in data_file(f"rl/{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_data_files():
    splits = {name: rl.load_split(name) for name in rl.SPLITS}
    train, test, validation = splits["train"], splits["test"], splits["validation"]
    assert len(train) >= 150 and len(test) >= 100 and len(validation) >= 40
    assert all(rows == _lines(name) for name, rows in splits.items())
    key = lambda it: (it["op"], it["a"], it["b"])  # noqa: E731
    for a, b in ((train, test), (train, validation), (test, validation)):  # no problem in two splits, however worded
        assert not {key(it) for it in a} & {key(it) for it in b}
        assert not {it["question"] for it in a} & {it["question"] for it in b}
    everything = train + test + validation
    assert len({key(it) for it in everything}) == len(everything) == len({it["id"] for it in everything})
    for it in everything:
        a, b = it["a"], it["b"]
        assert it["answer"] == (a + b if it["op"] == "add" else a - b) >= 1  # recomputed
        numbers = [int(x) for x in __import__("re").findall(r"\d+", it["question"])]
        assert numbers == [a, b]  # the question states the problem it is keyed by
    assert {it["op"] for it in test} == {"add", "sub"} == {it["op"] for it in validation}
    assert rl.load_split("train", limit=5) == train[:5]


def test_the_generator_rebuilds_the_files(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tasks", data_file("rl/make_tasks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build()
    assert list(built) == list(rl.SPLITS) and all(built[name] == _lines(name) for name in rl.SPLITS)


def test_load_split_refuses_bad_names():
    with pytest.raises(DataError, match="split='dev'"):
        rl.load_split("dev")
    with pytest.raises(DataError, match="limit=0"):
        rl.load_split("train", limit=0)


# ----------------------------------------------------------------------------------------------- sampling
def test_sample_groups_and_token_counts(tiny_lm):
    s = rl.sample(tiny_lm, ["the cat sat", "a dog ran to the house"], n=3, max_new_tokens=5, seed=0, batch_size=4)
    assert len(s.texts) == len(s.completion_ids) == len(s.prompt_ids) == len(s.finished) == 6
    assert s.prompt_ids[0] == s.prompt_ids[2] != s.prompt_ids[3]  # prompt by prompt, n rows each
    assert all(1 <= len(c) <= 5 for c in s.completion_ids)
    assert all(f == (len(c) < 5 or c[-1] in {tiny_lm.tokenizer.eos_token_id}) for f, c in
               zip(s.finished, s.completion_ids))
    again = rl.sample(tiny_lm, ["the cat sat", "a dog ran to the house"], n=3, max_new_tokens=5, seed=0, batch_size=4)
    assert again.completion_ids == s.completion_ids  # the seed fixes the draw
    other = rl.sample(tiny_lm, ["the cat sat", "a dog ran to the house"], n=3, max_new_tokens=5, seed=1, batch_size=4)
    assert other.completion_ids != s.completion_ids
    greedy = rl.sample(tiny_lm, ["the cat sat"], do_sample=False, max_new_tokens=5)
    assert greedy.completion_ids == rl.sample(tiny_lm, ["the cat sat"], do_sample=False,
                                              max_new_tokens=5).completion_ids
    with pytest.raises(CheckError, match="n=0"):
        rl.sample(tiny_lm, ["the cat sat"], n=0)
    with pytest.raises(CheckError, match="temperature=0"):
        rl.sample(tiny_lm, ["the cat sat"], temperature=0)


def test_token_logprobs_score_each_row_as_if_alone(tiny_lm):
    """Left-padded prompts and right-padded completions in one batch give each token the log-probability of that row
    run alone, unpadded, and the sampled tokens' log-probabilities sum to what lmkit.logprobs scores."""
    from lmkit.logprobs import completion_logprobs, labelled_example, pad

    s = rl.sample(tiny_lm, ["the cat sat", "a dog ran to the house"], n=2, max_new_tokens=6, seed=0)
    batch = rl.completion_batch(s.prompt_ids, s.completion_ids, tiny_lm.tokenizer)
    P = max(map(len, s.prompt_ids))
    assert batch["input_ids"].shape == (4, P + max(map(len, s.completion_ids)))
    assert batch["completion_mask"].sum(1).tolist() == [len(c) for c in s.completion_ids]
    with torch.no_grad():
        got = rl.token_logprobs(tiny_lm.model, batch)
        for i, (p, c) in enumerate(zip(s.prompt_ids, s.completion_ids)):
            ids = torch.tensor([p + c])
            logp = tiny_lm.model(ids).logits[0].float().log_softmax(-1)
            alone = torch.stack([logp[len(p) - 1 + t, tok] for t, tok in enumerate(c)])
            assert torch.allclose(got[i, :len(c)], alone, atol=1e-5), i
            summed = completion_logprobs(tiny_lm.model, pad([labelled_example(p, c)], tiny_lm.tokenizer)).logprob
            assert summed.item() == pytest.approx(alone.sum().item(), abs=1e-4)
    with pytest.raises(CheckError, match="2 prompts and 1 completions"):
        rl.completion_batch([[1], [2]], [[3]], 0)
    with pytest.raises(CheckError, match="row 0 has 1 prompt and 0 completion"):
        rl.completion_batch([[1]], [[]], 0)
        hot = rl.token_logprobs(tiny_lm.model, batch, temperature=0.5)
        ids = torch.tensor([s.prompt_ids[0] + s.completion_ids[0]])
        logp = (tiny_lm.model(ids).logits[0].float() / 0.5).log_softmax(-1)
        P0 = len(s.prompt_ids[0])
        alone = torch.stack([logp[P0 - 1 + t, tok] for t, tok in enumerate(s.completion_ids[0])])
        assert torch.allclose(hot[0, :len(s.completion_ids[0])], alone, atol=1e-5)  # the sampling distribution
    with pytest.raises(CheckError, match="temperature=0"):
        rl.token_logprobs(tiny_lm.model, batch, temperature=0)
    with pytest.raises(CheckError, match="has no position_ids"):
        rl.token_logprobs(tiny_lm.model, {k: v for k, v in batch.items() if k != "position_ids"})


# ----------------------------------------------------------------------------------------------- TRL parity
TRL_TYPES = {"dapo": "token", "bnpo": "token", "grpo": "sequence", "dr_grpo": "dr_grpo"}


@pytest.mark.integration  # importing trl and datasets takes 10-40 s on the shared CPU machines
def test_grpo_equals_trl_grpo_trainer(tmp_path):
    """The same batch through TRL's GRPOTrainer._compute_loss and through grpo_loss, each loss type; the advantages
    through TRL's own normalisation code path (scale_rewards="group", its nanstd and 1e-4)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from trl.trainer.utils import nanstd

    from conftest import make_model, make_tokenizer

    tok = make_tokenizer()
    policy = make_model(len(tok), seed=0).double()
    policy.save_pretrained(tmp_path / "policy")  # with beta > 0 TRL loads a reference from the policy's folder
    policy.config._name_or_path = str(tmp_path / "policy")
    B, P, T, group, max_len = 6, 4, 5, 3, 8
    g = torch.Generator().manual_seed(0)
    prompt_ids = torch.randint(4, len(tok), (B, P), generator=g)
    completion_ids = torch.randint(4, len(tok), (B, T), generator=g)
    lengths = torch.tensor([5, 2, 4, 1, 5, 3])
    completion_mask = (torch.arange(T) < lengths[:, None]).long()
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)  # a zero-variance group first
    with torch.no_grad():
        logits = policy(torch.cat([prompt_ids, completion_ids], 1)).logits[:, P - 1:-1]
        logp = logits.log_softmax(-1).gather(-1, completion_ids[..., None]).squeeze(-1)
    old = logp + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.3  # off-policy: ratios cross the clip
    ref = logp + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    ratio = torch.exp(logp - old)[completion_mask.bool()]
    assert ((ratio < 0.8) | (ratio > 1.2)).any() and ((ratio > 0.8) & (ratio < 1.2)).any()  # both sides of the clip

    # TRL's advantage code (grpo_trainer.py, scale_rewards="group") against ours
    grouped = rewards.view(-1, group)
    trl_adv = (rewards - grouped.mean(1).repeat_interleave(group)) / (nanstd(grouped, dim=1).repeat_interleave(group)
                                                                       + 1e-4)
    adv = rl.group_advantages(rewards, group)
    assert torch.allclose(adv, trl_adv, atol=1e-12, rtol=0) and (adv[:3] == 0).all()

    for loss_type, aggregation in TRL_TYPES.items():
        for beta, correction in ((0.0, True), (0.04, False), (0.04, True)):
            args = GRPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, loss_type=loss_type,
                              beta=beta, use_bias_correction_kl=correction, epsilon=0.2, num_generations=group,
                              per_device_train_batch_size=B, max_completion_length=max_len, logging_steps=1)
            trainer = GRPOTrainer(model=policy, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                                  args=args, train_dataset=Dataset.from_list([{"prompt": "the cat"}] * B),
                                  processing_class=tok)
            trainer.model.eval()
            inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids),
                      "completion_ids": completion_ids, "completion_mask": completion_mask, "advantages": adv,
                      "old_per_token_logps": old, "ref_per_token_logps": ref,
                      "num_items_in_batch": completion_mask.sum()}
            with torch.no_grad():
                trl_loss = trainer.compute_loss(trainer.model, inputs).item()
                ours = rl.grpo_loss(logp, old, adv, completion_mask, clip_eps=0.2, beta=beta, logp_ref=ref,
                                    aggregation=aggregation, max_length=max_len, kl_bias_correction=correction).item()
            assert ours == pytest.approx(trl_loss, abs=1e-6), (loss_type, beta, correction)
            assert abs(trl_loss) > 1e-3  # a real, non-trivial batch
            if loss_type != "bnpo":
                continue
            # token by token: TRL's tool_mask drops tokens from the loss only (attention still sees them), so a
            # one-hot tool_mask makes bnpo's loss that one token's loss
            per_token = rl.grpo_token_losses(logp, old, adv, beta=beta, logp_ref=ref, kl_bias_correction=correction)
            for i, t in completion_mask.nonzero().tolist():
                one = torch.zeros_like(completion_mask)
                one[i, t] = 1
                with torch.no_grad():
                    trl_token = trainer.compute_loss(trainer.model, {**inputs, "tool_mask": one}).item()
                assert per_token[i, t].item() == pytest.approx(trl_token, abs=1e-6), (i, t, beta, correction)


# ----------------------------------------------------------------------------------------------- exercises
def test_exercise_checkers_of_notebook_18_accept_the_answer_and_refuse_wrong_ones(monkeypatch):
    import math

    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)  # a wrong answer returns False instead of raising
    right = 1 - math.comb(17, 5) / math.comb(20, 5)
    assert exercises.check("18.1", right, n=20, c=3, k=5)
    assert not exercises.check("18.1", 1 - (1 - 3 / 20) ** 5, n=20, c=3, k=5)  # with replacement: biased
    assert not exercises.check("18.1", 3 / 20, n=20, c=3, k=5)                   # pass@1
    sd = 0.5 + rl.STD_EPS  # the group's (n - 1) standard deviation, plus epsilon
    assert exercises.check("18.2", [0.75 / sd, -0.25 / sd, -0.25 / sd, -0.25 / sd], rewards=[1, 0, 0, 0])
    assert not exercises.check("18.2", [0.75, -0.25, -0.25, -0.25], rewards=[1, 0, 0, 0])  # not scaled
    assert not exercises.check("18.2", [1.732, -0.577, -0.577, -0.577], rewards=[1, 0, 0, 0])  # population std
    assert not exercises.check("18.2", [1.5, -0.5, -0.5], rewards=[1, 0, 0, 0])
    assert exercises.check("18.3", 1 / 40, lengths=[5, 20], aggregation="sequence", max_length=32)
    assert not exercises.check("18.3", 1 / 25, lengths=[5, 20], aggregation="sequence", max_length=32)  # token mean
    assert not exercises.check("18.3", 1 / 64, lengths=[5, 20], aggregation="sequence", max_length=32)  # dr_grpo


# ----------------------------------------------------------------------------------------------- training
PROBLEMS = [{"question": f"Tom has {i} cats.", "answer": i} for i in range(1, 9)]


@pytest.fixture
def varied_reward(monkeypatch):
    """A reward that varies within groups on the tiny random model (which writes no numbers): the length's parity."""
    monkeypatch.setattr(rl, "reward", lambda text, answer: float(len(text) % 2))


def _train(tiny_folder, **kw):
    import lmkit

    lm = lmkit.load(tiny_folder, device="cpu", dtype="float32")
    settings = dict(steps=2, prompts=2, group=4, max_new_tokens=6, seed=3, lora_r=4, lora_alpha=8, lr=1e-2)
    return rl.train_grpo(lm, PROBLEMS, **{**settings, **kw})


def _adapters(policy):
    return {n: p.detach().clone() for n, p in policy.named_parameters() if "lora_" in n}


def test_train_grpo_moves_the_adapters_and_repeats_exactly(tiny_folder, varied_reward):
    policy, history = _train(tiny_folder)
    again, history_again = _train(tiny_folder)
    first, second = _adapters(policy), _adapters(again)
    assert first and all(torch.equal(first[n], second[n]) for n in first)  # same seed, same run
    assert any(p.abs().sum() > 0 for n, p in first.items() if "lora_B" in n)  # B starts at 0: it was trained
    assert [h["step"] for h in history] == [1, 2]
    assert [h["reward"] for h in history] == [h["reward"] for h in history_again]
    for h in history:
        assert 0 <= h["zero_variance"] < 1 and h["kl"] >= 0 and h["replies"] == 8 * h["draws"]
        assert 0 <= h["reward"] <= 1 and 1 <= h["length"] <= 6 and h["n_cut"] <= h["replies"]
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1 samples from the reference itself
    assert history[1]["seconds"] > history[0]["seconds"] > 0
    other, _ = _train(tiny_folder, seed=4)
    assert any(not torch.equal(first[n], p) for n, p in _adapters(other).items())


def test_train_grpo_chunks_give_the_whole_batch_gradient(tiny_folder, varied_reward):
    """fit divides each micro-batch's token sum by the step's tokens: one reply per backward pass or all at once
    gives the same step (DAPO's token mean over the batch)."""
    one, _ = _train(tiny_folder, steps=1, chunk=1)
    many, _ = _train(tiny_folder, steps=1, chunk=64)
    a, b = _adapters(one), _adapters(many)
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)


def test_group_sampler_refuses_a_task_that_teaches_nothing(tiny_folder, monkeypatch):
    monkeypatch.setattr(rl, "reward", lambda text, answer: 0.0)  # every group equal: no advantage anywhere
    with pytest.raises(ValueError, match="no group had unequal rewards in 4 draws"):
        _train(tiny_folder, steps=1)
    import lmkit

    lm = lmkit.load(tiny_folder, device="cpu", dtype="float32")
    for bad, message in (({"group": 1}, "group=1"), ({"lr": 0}, "lr=0"), ({"lora_r": 0}, "lora_r=0")):
        with pytest.raises(ValueError, match=message):
            rl.train_grpo(lm, PROBLEMS, steps=1, **bad)
        assert not hasattr(lm.model, "peft_config")  # refused before the model was wrapped
    with pytest.raises(CheckError, match="items="):
        rl.GroupSampler(None, None, [])
