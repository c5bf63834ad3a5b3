"""Causal interpretability on a real model, with hand-written forward hooks (notebook 05).

One module per method; the names are re-exported here, so ``from lmkit import interp`` gives all of them:

- :mod:`~lmkit.interp.hooks`: hook points (``embed``, ``resid``, ``attn``, ``z``, ``mlp``, ``final``), :func:`run`
  with edits, :func:`run_with_cache`;
- :mod:`~lmkit.interp.patching`: activation patching, :func:`patch` (residual stream, attention and MLP outputs,
  single heads) and the metric :func:`logit_diff`;
- :mod:`~lmkit.interp.attribution`: direct logit attribution, :func:`logit_attribution`;
- :mod:`~lmkit.interp.induction`: induction heads, :func:`induction_scores`, per-repeat losses and head ablation;
- :mod:`~lmkit.interp.steering`: :func:`steering_vector` and the :func:`steer` context manager;
- :mod:`~lmkit.interp.probes`: linear probes per layer with a control task;
- :mod:`~lmkit.interp.crosscheck`: the same patching through nnsight, to compare.

Every public function checks its arguments before any forward pass (one-line ValueErrors, :mod:`lmkit.checks`):
token ids must be integers in the vocabulary and fit the model's context (:func:`check_ids`); lists that pair by
index must have equal lengths; empty lists (``layers=[]``, ``heads=[]``) are refused; numbers must be finite.
``patch`` and ``nnsight_patch`` share one validation, :func:`check_patch`. Special-token text: a *prompt* is read as
the tokenizer reads it (``"<|im_end|>"`` becomes that token, as in ``generate``); an *answer* and probe *data* are
text, so special-token text there is refused (ask for a special token by its id).
"""
from lmkit.interp.attribution import components, logit_attribution, plot_attribution
from lmkit.interp.hooks import (POINTS, answer_id, check_ids, check_layer, hooked, layers, run, run_with_cache,
                                special_text, token_ids)
from lmkit.interp.induction import (ablate_heads, ablation_edits, check_repeated, head_means, induction_scores,
                                    random_heads, repeat_losses, repeated_tokens)
from lmkit.interp.patching import (WHERE, PatchSetup, check_answers, check_effect, check_pair, check_patch, layer_list,
                                   logit_diff, normalise, patch, plot_patching, replace_heads, replace_positions)
from lmkit.interp.probes import control_labels, noun_verb_data, plot_probes, probe_accuracy, word_activations
from lmkit.interp.steering import residual_mean, steer, steered_generate, steering_vector

__all__ = ["POINTS", "WHERE", "PatchSetup", "ablate_heads", "ablation_edits", "answer_id", "check_answers",
           "check_effect", "check_ids", "check_layer", "check_pair", "check_patch", "check_repeated", "special_text",
           "components", "control_labels", "head_means", "hooked", "induction_scores", "layer_list", "layers",
           "logit_attribution",
           "logit_diff", "noun_verb_data", "normalise", "patch", "plot_attribution", "plot_patching", "plot_probes", "probe_accuracy",
           "random_heads", "repeat_losses", "repeated_tokens", "replace_heads", "replace_positions",
           "residual_mean", "run", "run_with_cache", "steer", "steered_generate", "steering_vector", "token_ids",
           "word_activations"]
