"""Benchmark-style evaluation of a language model: multiple choice by log-likelihood, intervals, calibration, bias
(notebook 16).

- :func:`multiple_choice` scores each choice as a continuation of the question, the way lm-evaluation-harness does
  (Gao et al., *A framework for few-shot language model evaluation*, 2021-): ``acc`` takes the choice with the
  largest summed log-probability, ``acc_norm`` the largest per character (the harness's ``acc_norm``) or per token.
- :func:`letter_choice` shows the lettered choices and lets the model generate the letter (greedy);
  :func:`letter_logprobs` scores the same format by the letters' next-token log-probabilities, without generating.
- :func:`accuracy_interval` (Wilson score interval) and :func:`paired_difference` (exact paired interval) say how far an
  accuracy measured on a few hundred items can be trusted; :func:`calibration` gives the reliability diagram's bins
  and the expected calibration error (Naeini et al. 2015; Guo et al. 2017), :func:`ece_interval` its bootstrap
  interval and :func:`calibrated_ece` the ECE a perfectly calibrated model would show on as many items; :func:`shuffle_choices` and :data:`TEMPLATES` measure
  prompt sensitivity.
- :func:`bias_pairs` scores minimal sentence pairs that differ in one social-group word (the CrowS-Pairs method,
  Nangia et al. 2020, with a causal LM's log-likelihood instead of a masked LM's pseudo-log-likelihood).
- :func:`harness_task` / :func:`run_harness` run the same items through ``lm_eval`` as a local task, for parity.

The items live in ``data/evaluation/`` (written for this project; see its README). Modules: ``items``, ``scoring``,
``stats``, ``bias``, ``harness``.
"""
from __future__ import annotations

from .bias import bias_pairs, load_bias_pairs
from .harness import harness_task, run_harness
from .items import (LETTERS, NORMALIZE, TEMPLATES, ItemError, check_items, load_famous_lines, load_items, load_prefix_probe, paraphrased, render,
                    shuffle_choices)
from .scoring import (by_category, encode_pair, letter_choice, letter_logprobs, letter_prompt, letter_tokens,
                      loglikelihoods, multiple_choice, parse_letter)
from .stats import (accuracy_interval, calibrated_ece, calibration, ece_interval, paired_difference, plot_accuracies,
                    plot_reliability)

__all__ = ["ItemError", "TEMPLATES", "LETTERS", "load_items", "load_famous_lines", "load_prefix_probe", "check_items", "paraphrased", "render", "encode_pair",
           "loglikelihoods", "multiple_choice", "by_category", "letter_prompt", "parse_letter", "letter_choice",
           "letter_tokens", "letter_logprobs", "accuracy_interval", "paired_difference", "calibration", "ece_interval",
           "calibrated_ece", "plot_reliability", "plot_accuracies",
           "shuffle_choices", "load_bias_pairs", "bias_pairs", "harness_task", "run_harness"]
