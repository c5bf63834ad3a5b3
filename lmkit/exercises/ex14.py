"""Exercise checkers of notebook 14 (compression)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("14.1", hint="a weight of shape (out, in) has out x in codes of `bits` bits (divide by 8 for bytes), plus, "
                       "for every group of `group_size` weights of a row, one float16 scale and one float16 offset "
                       "(2 bytes each). Read out and in from layer.weight.shape.")
def _layer_bytes(answer, *, layer, bits: int, group_size: int):
    out_f, in_f = layer.weight.shape
    groups = out_f * (in_f // group_size)
    return int(answer) == out_f * in_f * bits // 8 + groups * 2 * 2


def _share_zeroed(model, sparsity: float) -> float:
    import torch.nn as nn

    unique = {p.data_ptr(): p.numel() for p in model.parameters()}  # the tied embedding/head once
    pruned = sum(round(sparsity * m.weight.numel()) for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and "lm_head" not in n)
    return pruned / sum(unique.values())


@exercise("14.2", hint="pruning zeroes `sparsity` x numel weights in every nn.Linear of the decoder and nothing in the "
                       "tied embedding/head (count it once: model.parameters() lists it once) or in the norms. Divide "
                       "the zeros by the number of parameters of the whole model.")
def _model_sparsity(answer, *, model, sparsity: float):
    return _close(answer, _share_zeroed(model, sparsity), rel=1e-3)


@exercise("14.3", hint="quantize the layer to 4 bits at each group size with cp.QuantLinear(layer, 4, g), take "
                       "cp.relative_error(q.dequantize(), layer.weight) for each, and answer with the group size (an "
                       "integer) whose error is smallest. For a decoder weight of this model, look at groups of 32.")
def _best_group(answer, *, layer, groups):
    from lmkit.compress import QuantLinear, relative_error

    errors = {g: relative_error(QuantLinear(layer, 4, g).dequantize(), layer.weight) for g in groups}
    return int(answer) == min(errors, key=errors.get)
