"""Exercise checkers of notebook 12 (fine-tuning)."""
from __future__ import annotations

from .registry import _close, exercise


def _linear_shapes(config) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each linear layer of one Llama block, from the model's config alone."""
    d, ff = config.hidden_size, config.intermediate_size
    from lmkit.layers import head_dim

    q, kv = config.num_attention_heads * head_dim(config), config.num_key_value_heads * head_dim(config)
    return {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
            "gate_proj": (d, ff), "up_proj": (d, ff), "down_proj": (ff, d)}


def lora_parameters(config, r: int, targets) -> int:
    """Trainable parameters of LoRA with rank ``r`` on ``targets``: r·(d_in + d_out) per adapted matrix, every layer."""
    shapes = _linear_shapes(config)
    return config.num_hidden_layers * sum(r * sum(shapes[t]) for t in targets)


@exercise("12.1", hint="an adapter on a d_out x d_in matrix adds A (r x d_in) and B (d_out x r); take d_in and d_out "
                       "of q_proj and v_proj from the shapes printed in section 2 (v_proj is smaller: grouped-query "
                       "attention), use r=4, and multiply by the number of layers.")
def _lora_q_v_r4(answer, *, lm):
    return int(answer) == lora_parameters(lm.model.config, 4, ("q_proj", "v_proj"))


@exercise("12.2", hint="collate the examples with ft.collate(..., pad_id) and count the label positions equal to "
                       "ft.IGNORE (-100) in batch8['labels']: prompt tokens AND right padding; divide by the number "
                       "of positions (rows x columns). Answer with a fraction between 0 and 1.")
def _masked_fraction(answer, *, tokenizer, rows):
    from lmkit.finetune import format_prompt

    prompts = [len(tokenizer(format_prompt(tokenizer, r["prompt"]), add_special_tokens=False).input_ids)
               for r in rows]
    answers = [len(tokenizer(r["completion"], add_special_tokens=False).input_ids) + 1 for r in rows]  # + end of turn
    width = max(p + a for p, a in zip(prompts, answers))
    return _close(answer, 1 - sum(answers) / (len(rows) * width))
