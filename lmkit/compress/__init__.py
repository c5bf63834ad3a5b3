"""Shrinking a model: quantization, pruning and knowledge distillation, each measured (notebook 14).

| module | what it holds |
|---|---|
| :mod:`~lmkit.compress.linears` | ``decoder_linears`` (the layers every method touches), ``set_module`` |
| :mod:`~lmkit.compress.int8` | ``dynamic_int8`` (per-channel, layers left in float32), ``fake_quantize``, ``activation_outliers`` |
| :mod:`~lmkit.compress.lowbit` | ``QuantLinear``, ``quantize_weights``: ``w ≈ q·s + m`` in groups, 4-bit codes packed by hand |
| :mod:`~lmkit.compress.tied` | ``tied_names``, ``untie``, ``TiedWeightError``: a tied head is never changed through ``lm_head`` |
| :mod:`~lmkit.compress.pruning` | ``prune_magnitude`` (``torch.nn.utils.prune``), ``sparsity_of`` |
| :mod:`~lmkit.compress.distill` | ``shallow_copy``, ``distill_loss``, ``token_batches``, ``distill`` (on :func:`lmkit.training.fit`) |
| :mod:`~lmkit.compress.quality` | ``block_means``, ``heldout_block_nll``: per-block held-out loss, paired for ``lmkit.stats.compare`` |
| :mod:`~lmkit.compress.size` | ``disk_bytes``, ``memory_bytes``, ``size_mb``, ``bits_per_weight``, ``relative_error``, ``with_model`` |

Dynamic int8 itself, :func:`quantize_int8`, is first timed in notebook 08 and lives in :mod:`lmkit.profile.quantize`.
Every public name is here: ``from lmkit import compress as cp; cp.quantize_weights(model, bits=4)``.
"""
from lmkit.compress.distill import distill, distill_loss, shallow_copy, token_batches
from lmkit.compress.int8 import ACT_SCALES, FakeQuantLinear, activation_outliers, dynamic_int8, fake_quant_activations, fake_quantize
from lmkit.compress.linears import decoder_linears, set_module
from lmkit.compress.lowbit import QuantLinear, quantize_weights
from lmkit.compress.quality import block_means, heldout_block_nll
from lmkit.compress.pruning import prune_magnitude, sparsity_of
from lmkit.compress.size import bits_per_weight, disk_bytes, memory_bytes, relative_error, size_mb, with_model
from lmkit.compress.tied import TiedWeightError, tied_names, untie
from lmkit.profile.quantize import quantize_int8

__all__ = ["quantize_int8", "dynamic_int8", "fake_quant_activations", "FakeQuantLinear", "fake_quantize",
           "activation_outliers", "QuantLinear", "quantize_weights", "TiedWeightError", "tied_names", "untie",
           "prune_magnitude", "sparsity_of", "shallow_copy", "distill_loss", "token_batches", "distill", "disk_bytes",
           "memory_bytes", "with_model", "size_mb", "bits_per_weight", "relative_error", "decoder_linears",
           "set_module", "block_means", "heldout_block_nll", "ACT_SCALES"]
