"""Safety, measured: what a deployed model leaks, obeys, refuses and admits not knowing (taught in the safety
notebook).

- **Memorisation** (:mod:`~lmkit.safety.memorisation`): :func:`extraction` prompts with a passage's first
  ``k`` tokens and checks whether greedy decoding writes the next ``m`` exactly (Carlini et al. 2021, 2023);
  :func:`membership_scores` gives the loss and the loss over zlib length of each text (Carlini et al. 2021), and
  :func:`roc_auc` the ROC curve and AUC that tell seen from unseen texts, with a bootstrap interval.
- **Prompt injection** (:mod:`~lmkit.safety.injection`): instructions planted in notebook 15's passages
  (Greshake et al. 2023), mitigations as prompt builders (spotlighting, Hines et al. 2024; a system-prompt warning;
  span-constrained output) and :func:`injection_run`, which scores attack success and clean accuracy.
- **Refusals and abstentions** (:mod:`~lmkit.safety.refusals`): the written detectors :func:`is_refusal` and
  :func:`is_abstention` (their phrases in their docstrings), :func:`audit` against a hand reading, and the runs
  over XSTest-style pairs (Röttger et al. 2024) and open questions.
- **Selective prediction** (:mod:`~lmkit.safety.measures`): :func:`risk_coverage` and :func:`aurc`
  (Geifman & El-Yaniv 2017; Geifman et al. 2019); :func:`rate_table` for every rate with its Wilson interval.
- **Data** (:mod:`~lmkit.safety.data`): the four sets of ``data/safety/``.
- Batched greedy decoding (:mod:`~lmkit.safety.generation`): :func:`replies`, :func:`greedy_ids`.

The refusal direction of Arditi et al. 2024 is notebook 05's steering code
(:func:`lmkit.interp.steering_vector`, :func:`lmkit.interp.steer`); :func:`replies` run inside ``steer(...)``
generates steered replies in batches.
"""
from __future__ import annotations

from .data import (FAME, GROUPS, PAYLOAD_KINDS, SPLITS, load_open_questions, load_passages, load_payloads,
                   load_refusal_pairs)
from .generation import chat_messages, greedy_ids, replies
from .injection import (DATAMARK, DEFENCES, PLACES, SECRET, SYSTEM_PROMPT, WARNING, attack_succeeded, datamark,
                        injection_messages, injection_run, plant, span_regex)
from .measures import (ROC, aurc, plot_risk_coverage, plot_roc, rate_table, risk_coverage, roc_auc, tpr_at_fpr)
from .memorisation import extraction, extraction_by_prefix, matched_tokens, membership_scores, passage_rows
from .refusals import (ABSTENTION_PHRASES, REFUSAL_OPENINGS, REFUSAL_PHRASES, abstention_run, audit, audit_sample,
                       is_abstention, is_refusal, normalise_reply, refusal_run)

__all__ = ["GROUPS", "FAME", "SPLITS", "PAYLOAD_KINDS", "load_passages", "load_refusal_pairs", "load_payloads",
           "load_open_questions", "greedy_ids", "chat_messages", "replies", "matched_tokens", "passage_rows",
           "extraction", "extraction_by_prefix", "membership_scores", "rate_table", "ROC", "roc_auc", "tpr_at_fpr",
           "plot_roc", "risk_coverage", "aurc", "plot_risk_coverage", "REFUSAL_OPENINGS", "REFUSAL_PHRASES",
           "ABSTENTION_PHRASES", "normalise_reply", "is_refusal", "is_abstention", "audit_sample", "audit",
           "refusal_run", "abstention_run", "SECRET", "SYSTEM_PROMPT", "WARNING", "DEFENCES", "PLACES", "DATAMARK",
           "plant", "datamark", "injection_messages", "span_regex", "attack_succeeded", "injection_run"]
