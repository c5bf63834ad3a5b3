"""Using a small instruct model for real tasks, with measured quality (notebook 15).

- Sentiment classification without generating anything: the model scores each label word after the prompt and the
  most likely label wins (:func:`label_scores`, :func:`classify`). Zero-shot, few-shot (examples in the prompt, or
  as earlier chat turns) and contextual calibration are the same computation with a different prompt.
- Translation, question answering and summarisation through the chat template (:func:`ask`), scored with exact
  match against known answers (:func:`exact_match`).
- Retrieval: the MiniLM sentence encoder finds the passage that answers a question (:class:`Retriever`), and the
  model answers with and without it (:func:`qa_run`).
- Summaries judged against written references with ROUGE-1/2/L (:func:`rouge`), next to the lead-3 baseline
  (:func:`lead_n`) on the project's articles (:func:`load_summaries`).

One module per part: ``data`` (the sets), ``classify`` (label likelihood), ``metrics``, ``chat`` (tasks through
the chat template), ``retrieval``, ``summaries`` (lead-n and ROUGE); every name is importable from ``lmkit.apps``. The data sets live in ``data/apps/`` (see its README): written for this project, disjoint from ``data/finetune/``.
"""
from __future__ import annotations

from lmkit.apps.chat import answer, answer_question, ask, qa_prompt, summarise, translate
from lmkit.apps.classify import (CONTENT_FREE, INSTRUCTION, SentimentPrompt, classify, continuation_logprobs,
                                 label_prior, label_scores, standard_prompts)
from lmkit.apps.data import (DATA_DIR, LABELS, SCHEMAS, SUMMARY_WORDS, load_summaries, passages, qa_data,
                             sentiment_data, translation_data)
from lmkit.apps.metrics import (answer_first, chrf, contains_answer, contradicts_answer, evaluate, exact_match,
                                first_line, normalize_answer, plot_confusion)
from lmkit.apps.retrieval import Retriever, qa_run, recall_at_k
from lmkit.apps.summaries import ROUGE_TYPES, SENTENCE_END, lead_n, rouge, sentences
from lmkit.apps.classify import _common_prefix  # noqa: F401 - tested directly

__all__ = ["DATA_DIR", "LABELS", "SCHEMAS", "INSTRUCTION", "CONTENT_FREE", "sentiment_data", "qa_data", "passages",
           "translation_data", "continuation_logprobs", "SentimentPrompt", "standard_prompts", "label_scores",
           "label_prior", "classify", "evaluate", "plot_confusion", "normalize_answer", "first_line", "exact_match",
           "contains_answer", "contradicts_answer", "answer_first", "chrf", "ask", "translate", "summarise", "qa_prompt", "answer_question", "Retriever",
           "recall_at_k", "qa_run", "SUMMARY_WORDS", "load_summaries", "SENTENCE_END", "ROUGE_TYPES", "sentences",
           "lead_n", "rouge"]
