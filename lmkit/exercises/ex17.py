"""Exercise checkers of notebook 17 (preference tuning with DPO)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("17.1", hint="the rewards are beta * (policy logp - reference logp) for chosen and for rejected; the loss is "
                       "-log(sigmoid(r_chosen - r_rejected)) = log(1 + exp(-(r_chosen - r_rejected))). Use math.")
def _loss_by_hand(answer, *, policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    import torch

    from lmkit.preference import dpo_loss

    loss, _, _ = dpo_loss(*(torch.tensor([float(x)], dtype=torch.float64)
                            for x in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)), beta=beta)
    return _close(answer, loss.item(), rel=1e-4, abs_=1e-6)


@exercise("17.2", hint="compare the REFERENCE model's summed log-probabilities of chosen and rejected, pair by pair "
                       "(ref_test[0] > ref_test[1]), and take the mean of that boolean tensor as a float.")
def _raw_logp_accuracy(answer, *, ref_chosen, ref_rejected):
    import torch

    return _close(answer, (torch.as_tensor(ref_chosen) > torch.as_tensor(ref_rejected)).float().mean().item())


@exercise("17.3", hint="run pf.sequence_logps on a batch of the pair's chosen example alone (ft.collate([chosen], "
                       "tokenizer)) under the tuned model and under the reference (adapters off: "
                       "`with tuned.model.disable_adapter():`), subtract, and multiply by beta.")
def _chosen_reward(answer, *, tuned, pair, beta):
    import torch

    from lmkit import finetune as ft
    from lmkit.preference import sequence_logps

    tok = tuned.tokenizer
    ex = ft.encode_example(tok, pair["prompt"], pair["chosen"], 192)
    batch = {k: v.to(tuned.device) for k, v in ft.collate([ex], tok).items()}
    with torch.no_grad():
        policy = sequence_logps(tuned.model, batch).item()
        with tuned.model.disable_adapter():
            ref = sequence_logps(tuned.model, batch).item()
    return _close(answer, beta * (policy - ref), rel=1e-3, abs_=1e-3)
