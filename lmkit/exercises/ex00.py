"""Exercise checkers of notebook 00 (running an LLM)."""
from __future__ import annotations

from .registry import _close, exercise

@exercise("00.1", hint="softmax the logits at the LAST position of 'The capital of France is', then read the entry "
                       "of the token id of ' Paris' (one token: lm.tokenizer.encode(' Paris', add_special_tokens=False)).")
def _p_paris(answer, *, lm):
    import torch

    ids = lm.encode("The capital of France is")
    with torch.inference_mode():
        probs = torch.softmax(lm.model(ids).logits[0, -1].float(), -1)
    (tid,) = lm.tokenizer.encode(" Paris", add_special_tokens=False)
    return _close(answer, probs[tid].item())


def _n_params(cfg, layers: int, scale: int) -> int:
    d, V, dh = cfg.hidden_size * scale, cfg.vocab_size, cfg.head_dim
    h, kv, ff = cfg.num_attention_heads * scale, cfg.num_key_value_heads * scale, cfg.intermediate_size * scale
    attn = d * h * dh + 2 * d * kv * dh + h * dh * d
    return V * d + layers * (attn + 3 * d * ff) + (2 * layers + 1) * d


@exercise("00.2", hint="answer with a pair (parameters with 2x layers, parameters with 2x width); reuse the four "
                       "formulas of section 2 and scale d, the number of heads and d_ff together.")
def _twice(answer, *, lm):
    cfg = lm.model.config
    two_layers, two_width = answer
    return int(two_layers) == _n_params(cfg, 2 * cfg.num_hidden_layers, 1) and \
        int(two_width) == _n_params(cfg, cfg.num_hidden_layers, 2)


@exercise("00.3", hint="answer with the temperature (0.2 or 1.5) that gives MORE distinct samples; look at the "
                       "entropy of each distribution in the plot above.")
def _which_temperature(answer):
    return float(answer) == 1.5
