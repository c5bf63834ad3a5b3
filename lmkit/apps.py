"""Using a small instruct model for real tasks, with measured quality (notebook 09).

- Sentiment classification without generating anything: the model scores each label word after the prompt and the
  most likely label wins (:func:`label_scores`, :func:`classify`). Zero-shot, few-shot (examples in the prompt, or
  as earlier chat turns) and contextual calibration are the same computation with a different prompt.
- Translation, question answering and summarisation through the chat template (:func:`ask`), scored with exact
  match against known answers (:func:`exact_match`).
- Retrieval: the MiniLM sentence encoder finds the passage that answers a question (:class:`Retriever`), and the
  model answers with and without it (:func:`qa_run`).

The data sets live in ``data/apps/`` (see its README): written for this project, disjoint from ``data/finetune/``.
"""
from __future__ import annotations

import copy
import re
import string
import unicodedata
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmkit.data import data_file
from lmkit.files import read_jsonl

__all__ = ["DATA_DIR", "LABELS", "SCHEMAS", "INSTRUCTION", "CONTENT_FREE", "sentiment_data", "qa_data", "passages",
           "translation_data", "continuation_logprobs", "SentimentPrompt", "standard_prompts", "label_scores",
           "label_prior", "classify", "evaluate", "plot_confusion", "normalize_answer", "first_line", "exact_match",
           "contains_answer", "answer_first", "chrf", "ask", "translate", "summarise", "qa_prompt", "answer_question", "Retriever",
           "recall_at_k", "qa_run"]

DATA_DIR = "apps"
"""The project's sentiment, Q&A, passage and translation sets under ``data/`` (see ``data/apps/README.md``); found
by :func:`lmkit.data.data_file`, from the checkout or, after a pip install (Colab), downloaded once."""
LABELS = ("positive", "negative", "neutral")


# ----------------------------------------------------------------------------------------------- data
SCHEMAS = {"sentiment": {"text": str, "label": str, "split": str},
           "qa": {"id": str, "question": str, "answers": list, "passage": str},
           "passages": {"id": str, "text": str},
           "translation": {"en": str, "fr": list}}
"""The fields every row of each data set must have, checked line by line by :func:`lmkit.files.read_jsonl`."""


def _rows(name: str) -> list[dict]:
    return read_jsonl(data_file(f"{DATA_DIR}/{name}.jsonl"), SCHEMAS[name])


def sentiment_data(split: str = "test") -> list[dict]:
    """The labelled sentiment set: ``split="test"`` (90 rows, 30 per label) or ``"shots"`` (9 prompt examples)."""
    if split not in ("test", "shots"):
        raise ValueError(f"split={split!r}: use 'test' (the scored set) or 'shots' (the few-shot examples)")
    return [r for r in _rows("sentiment") if r["split"] == split]


def qa_data() -> list[dict]:
    """Questions with their accepted answers and the id of the passage that holds the answer (notebook 09)."""
    return _rows("qa")


def passages() -> list[dict]:
    """The passages that retrieval searches: common knowledge, and a fictional town's handbook (notebook 09)."""
    return _rows("passages")


def translation_data() -> list[dict]:
    """Short English sentences with reference French translations (notebook 09)."""
    return _rows("translation")


# ----------------------------------------------------------------------------------------------- likelihood scoring
def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def _common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest run of ids that every sequence starts with."""
    n = min(map(len, seqs))
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


@torch.no_grad()
def _rows_logprobs(lm, prefix_cache, n_prefix: int, seqs: list[list[int]], keep: list[int]) -> torch.Tensor:
    """Log-softmax at positions ``keep`` of each row, ``[B, len(keep), vocab]``; rows continue a cached prefix.

    Rows are padded on the right: with a causal mask a real token never sees the padding after it, and positions
    are simply ``n_prefix + 0, 1, 2, ...`` for every row (with left padding they would have to be shifted per row).
    The prefix's keys and values are computed once and copied for each batch (the KV cache of notebook 05).
    """
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    width = max(map(len, seqs))
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=lm.device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=lm.device)
    positions = torch.arange(n_prefix, n_prefix + width, device=lm.device).expand(len(seqs), width)
    kwargs = {"use_cache": False}
    if n_prefix:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(seqs))
        kwargs = {"past_key_values": cache, "use_cache": True}
        mask = torch.cat([torch.ones(len(seqs), n_prefix, dtype=mask.dtype, device=lm.device), mask], dim=1)
    logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                      logits_to_keep=torch.tensor(keep, device=lm.device), **kwargs).logits  # the head only where needed
    return F.log_softmax(logits.float(), dim=-1).cpu()


def continuation_logprobs(lm, contexts: list[str], continuations: list[str], *, batch_size: int = 8,
                          progress: bool = True) -> torch.Tensor:
    """``log P(continuation | context)``, summed over the continuation's tokens, ``[len(contexts), len(continuations)]``.

    Context and continuation are tokenized separately and joined as ids, so each label is scored as the same
    tokens whatever precedes it. When every continuation is one token, one forward pass per context gives all of
    them (the next-token distribution at the last position); otherwise each (context, continuation) pair is a row
    and the log-probabilities of its last tokens are added up. The ids that all contexts share at the start (an
    instruction, few-shot examples, a system prompt) go through the model once (notebook 09).
    """
    if isinstance(contexts, str) or isinstance(continuations, str):
        raise ValueError("contexts and continuations must be lists of strings: wrap a single string in [...]")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (rows scored per forward pass)")
    contexts, continuations = list(contexts), list(continuations)
    if not contexts or not continuations:
        raise ValueError(f"got {len(contexts)} context(s) and {len(continuations)} continuation(s): pass at least one "
                         "of each")
    tok = lm.tokenizer
    ctx_ids = [_ids(tok, c) for c in contexts]
    cont_ids = [_ids(tok, c) for c in continuations]
    for c, ids in zip(contexts, ctx_ids):
        if not ids:
            raise ValueError(f"context {c!r} has no tokens: the first label token needs something to follow")
    for c, ids in zip(continuations, cont_ids):
        if not ids:
            raise ValueError(f"continuation {c!r} has no tokens: use a non-empty label word")
    # every row keeps at least its last context token: the logits there predict the first label token
    n_prefix = min(_common_prefix(ctx_ids), min(map(len, ctx_ids)) - 1)
    prefix_cache = None
    if n_prefix:
        with torch.no_grad():
            prefix_cache = lm.model(torch.tensor([ctx_ids[0][:n_prefix]], device=lm.device),
                                    use_cache=True).past_key_values
    single = all(len(ids) == 1 for ids in cont_ids)
    if single:
        firsts = torch.tensor([ids[0] for ids in cont_ids])
        rows = [((i, None), ctx[n_prefix:]) for i, ctx in enumerate(ctx_ids)]
    else:
        rows = [((i, j), ctx[n_prefix:] + cont) for i, ctx in enumerate(ctx_ids) for j, cont in enumerate(cont_ids)]
    rows.sort(key=lambda r: -len(r[1]))  # similar lengths together: little padding inside a batch
    out = torch.empty(len(contexts), len(continuations))
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc="scoring", disable=not progress or len(starts) < 2, leave=False):
        batch = rows[start:start + batch_size]
        # the logits at position t predict token t + 1: for a row of length L ending with an m-token continuation,
        # positions L-m-1 .. L-2 predict it (m = 0 in the single-token case: only position L-1 is needed)
        spans = [range(len(seq) - 1, len(seq)) if single else range(len(seq) - len(cont_ids[j]) - 1, len(seq) - 1)
                 for (_, j), seq in batch]
        keep = sorted(set().union(*spans))
        column = {pos: c for c, pos in enumerate(keep)}
        logp = _rows_logprobs(lm, prefix_cache, n_prefix, [seq for _, seq in batch], keep)
        for ((i, j), _), span, row in zip(batch, spans, logp):
            cols = [column[pos] for pos in span]
            if single:
                out[i] = row[cols[0], firsts]
            else:
                out[i, j] = row[cols].gather(1, torch.tensor(cont_ids[j])[:, None]).sum()
    return out


# ----------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class SentimentPrompt:
    """How a text becomes the context before the label word (notebook 09).

    - ``template``: the text around ``{text}``; for few-shot plain prompts it follows the examples.
    - ``labels``: label -> the word whose likelihood is scored (mind the leading space in plain text: " positive"
      is one token, "positive" another).
    - ``chat``: put ``instruction`` + template in a user turn of the chat template; the label is then the first
      word of the assistant's reply.
    - ``shots``: ``(text, label)`` examples, shown before the text (plain) or as earlier chat turns (chat).
    """

    name: str
    template: str
    labels: dict = field(default_factory=lambda: {lab: " " + lab for lab in LABELS})
    instruction: str = ""
    chat: bool = False
    shots: tuple = ()

    def context(self, lm, text: str) -> str:
        if "{text}" not in self.template:
            raise ValueError(f"prompt {self.name!r}: template {self.template!r} has no {{text}} slot; add one")
        if not self.chat:
            examples = "".join(self.template.format(text=t) + self.labels[lab] + "\n\n" for t, lab in self.shots)
            return self.instruction + examples + self.template.format(text=text)
        if getattr(lm.tokenizer, "chat_template", None) is None:
            raise ValueError(f"prompt {self.name!r} uses the chat template, but {lm.name!r} has none: "
                             "use chat=False or an instruct model")
        messages = []
        for i, (t, lab) in enumerate(self.shots):
            head = self.instruction if i == 0 else ""
            messages += [{"role": "user", "content": head + self.template.format(text=t)},
                         {"role": "assistant", "content": self.labels[lab]}]
        head = "" if self.shots else self.instruction
        messages.append({"role": "user", "content": head + self.template.format(text=text)})
        return lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


INSTRUCTION = "Classify the sentiment of the review as positive, negative or neutral.\n\n"


def standard_prompts(shots=None) -> dict[str, SentimentPrompt]:
    """The five prompts notebook 09 compares: bare, instruction, chat, few-shot, few-shot chat.

    ``shots``: the few-shot examples as ``(text, label)`` pairs, by default the set's 9 ``"shots"`` rows
    interleaved by label (positive, negative, neutral, positive, ...) so that no label comes last by default.
    """
    if shots is None:
        rows = sentiment_data("shots")
        by = {lab: [r["text"] for r in rows if r["label"] == lab] for lab in LABELS}
        shots = tuple((by[lab][i], lab) for i in range(min(map(len, by.values()))) for lab in LABELS)
    chat_labels = {lab: lab for lab in LABELS}
    return {
        "bare": SentimentPrompt("bare", "{text}\nSentiment:"),
        "instruction": SentimentPrompt("instruction", "Review: {text}\nSentiment:", instruction=INSTRUCTION),
        "chat": SentimentPrompt("chat", "Review: {text}", labels=chat_labels, chat=True,
                                instruction=INSTRUCTION.replace("neutral.", "neutral. Answer with one word.")),
        "few-shot": SentimentPrompt("few-shot", "Review: {text}\nSentiment:", instruction=INSTRUCTION,
                                    shots=tuple(shots)),
        "few-shot chat": SentimentPrompt("few-shot chat", "Review: {text}", labels=chat_labels, chat=True,
                                         instruction=INSTRUCTION.replace("neutral.", "neutral. Answer with one word."),
                                         shots=tuple(shots)),
    }


CONTENT_FREE = ("N/A", "", "[MASK]")


def label_scores(lm, prompt: SentimentPrompt, texts, *, batch_size: int = 8, progress: bool = True) -> torch.Tensor:
    """Log-likelihood of each label word after ``prompt`` for each text, ``[len(texts), len(prompt.labels)]``."""
    if isinstance(texts, str):
        texts = [texts]
    contexts = [prompt.context(lm, t) for t in texts]
    return continuation_logprobs(lm, contexts, list(prompt.labels.values()), batch_size=batch_size,
                                 progress=progress)


def label_prior(lm, prompt: SentimentPrompt, content_free=CONTENT_FREE) -> torch.Tensor:
    """The prompt's own preference among labels, ``[n_labels]`` log-probabilities (notebook 09).

    The label distribution for texts that carry no sentiment at all ("N/A", "", "[MASK]"), averaged: the bias of
    the prompt itself (contextual calibration, Zhao et al. 2021, "Calibrate before use").
    """
    probs = label_scores(lm, prompt, list(content_free), progress=False).softmax(-1).mean(0)
    return probs.log()


def classify(lm, prompt: SentimentPrompt, texts, *, calibrate: bool = False, batch_size: int = 8,
             progress: bool = True) -> list[str]:
    """The most likely label for each text (notebook 09).

    ``calibrate=True`` first divides each label's probability by the prompt's :func:`label_prior`, so a prompt
    that leans towards one label no longer wins by its lean alone.
    """
    scores = label_scores(lm, prompt, texts, batch_size=batch_size, progress=progress).log_softmax(-1)
    if calibrate:
        scores = scores - label_prior(lm, prompt)
    names = list(prompt.labels)
    return [names[i] for i in scores.argmax(-1).tolist()]


# ----------------------------------------------------------------------------------------------- metrics
def evaluate(y_true, y_pred, labels=LABELS) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true label, columns: predicted) with sklearn (notebook 09)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true, y_pred, labels = list(y_true), list(y_pred), list(labels)
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError(f"got {len(y_true)} true and {len(y_pred)} predicted labels: pass two non-empty lists "
                         "of the same length")
    for y in y_true + y_pred:
        if y not in labels:
            raise ValueError(f"label {y!r} is not one of {labels}: map it to one of them first")
    return {"n": len(y_true), "accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels), "labels": labels}


def plot_confusion(result: dict, ax=None, title: str = "confusion matrix"):
    """Draw :func:`evaluate`'s confusion matrix, counts in the cells (notebook 09). Returns the axes."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.6))
    ConfusionMatrixDisplay(result["confusion"], display_labels=result["labels"]).plot(
        ax=ax, colorbar=False, cmap="Blues", values_format="d")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"{title}\naccuracy {result['accuracy']:.0%}, n={result['n']}", fontsize=10)
    return ax


def normalize_answer(text: str) -> str:
    """Lower case, accents and punctuation removed, articles dropped, spaces collapsed (SQuAD-style, notebook 09)."""
    text = unicodedata.normalize("NFKD", str(text).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = "".join(" " if c in string.punctuation or c in "’‘“”«»" else c for c in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def first_line(text: str) -> str:
    """The answer proper: the first non-empty line of a model's reply (notebook 09)."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def exact_match(prediction: str, answers) -> bool:
    """True if the normalised first line of ``prediction`` equals one normalised accepted answer (notebook 09)."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    if not answers:
        raise ValueError("no accepted answers given: pass at least one, e.g. ['Canberra']")
    pred = normalize_answer(first_line(prediction))
    return any(pred == normalize_answer(a) for a in answers)


def contains_answer(prediction: str, answers) -> bool:
    """True if a normalised accepted answer occurs, as whole words, in the normalised reply (lenient, notebook 09)."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    if not answers:
        raise ValueError("no accepted answers given: pass at least one, e.g. ['Canberra']")
    pred = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(a)} " in pred for a in answers if normalize_answer(a))


_CANDIDATE = re.compile(r"[A-Z][\w'’-]*|\d+(?:[.,]\d+)?")


def answer_first(prediction: str, answers, question: str = "") -> bool:
    """:func:`contains_answer`, audited: the first name or number the reply offers must belong to an answer (notebook 09).

    "Contains" alone credits a reply such as *"The author of Pride and Prejudice is likely Elizabeth Bennet, from Jane
    Austen's novel"*: it mentions the answer but asserts another. Here the candidates are the reply's capitalised words
    and numbers that do not open a sentence and are not words of ``question``; the reply counts as right only if it
    contains an accepted answer and its first candidate (if it has any) is a word of an accepted answer.
    """
    if not contains_answer(prediction, answers):
        return False
    answers = [answers] if isinstance(answers, str) else list(answers)
    answer_words = {w for a in answers for w in normalize_answer(a).split()}
    question_words = set(normalize_answer(question).split())
    text = str(prediction)
    for m in _CANDIDATE.finditer(text):
        before = text[: m.start()].rstrip(" \t\"'“‘*(")
        if not before or before[-1] in ".:!?\n":  # opens a sentence: capitalised by grammar, not a name
            continue
        word = normalize_answer(m.group(0))
        if not word or word in question_words:
            continue
        return word.split()[0] in answer_words
    return True


def chrf(prediction: str, references) -> float:
    """chrF (character n-gram F-score, Popović 2015), 0-100, of one prediction against its references (notebook 09).

    Computed by sacrebleu's ``sentence_chrf`` with its defaults (character 6-grams, beta = 2): unlike exact match, a
    near-miss or a partly right translation gets partial credit.
    """
    from sacrebleu import sentence_chrf

    references = [references] if isinstance(references, str) else list(references)
    if not references:
        raise ValueError("no reference translations given: pass at least one, e.g. ['Bonjour.']")
    return float(sentence_chrf(str(prediction), references).score)


# ----------------------------------------------------------------------------------------------- chat tasks
def ask(lm, message: str, *, max_new_tokens: int = 48, stop_at_newline: bool = False, system: str | None = None) -> str:
    """Greedy reply of the model to one user message through its chat template (notebook 09).

    ``stop_at_newline`` ends the reply at its first line break (short answers); ``system`` replaces the
    template's default system prompt. Built on :func:`lmkit.generate.stream`.
    """
    from lmkit.generate import stream

    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": message}]
    text, ids = "", []
    for step in stream(lm, messages, chat=True, do_sample=False, max_new_tokens=max_new_tokens, n_alternatives=0):
        if step.is_eos:
            break
        text, ids = text + step.text, ids + [step.id]
        if stop_at_newline and "\n" in text.lstrip():
            break
    reply = lm.tokenizer.decode(ids, skip_special_tokens=True).strip()
    return first_line(reply) if stop_at_newline else reply


def translate(lm, text: str, target: str = "French", **kw) -> str:
    """Translate ``text`` into ``target`` through the chat template (notebook 09)."""
    return ask(lm, f"Translate this sentence into {target}. Reply with the translation only.\n\n{text}",
               stop_at_newline=True, **{"max_new_tokens": 32, **kw})


def summarise(lm, text: str, **kw) -> str:
    """A one-sentence summary of ``text`` through the chat template (notebook 09)."""
    return ask(lm, f"Summarise this text in one short sentence.\n\n{text}", **{"max_new_tokens": 48, **kw})


def qa_prompt(question: str, context: str | None = None) -> str:
    """The user message for a question, with or without a passage to read (notebook 09)."""
    if context is None:
        return f"Answer the question with a few words only.\n\nQuestion: {question}"
    return (f"Read the passage and answer the question with a few words only.\n\nPassage: {context}\n\n"
            f"Question: {question}")


def answer_question(lm, question: str, context: str | None = None, **kw) -> str:
    """The model's short answer to ``question``, reading ``context`` first if given (notebook 09).

    (``lmkit.finetune.greedy_answers`` is another thing: batched greedy replies to fine-tuning prompts.)
    """
    return ask(lm, qa_prompt(question, context), stop_at_newline=True, **{"max_new_tokens": 24, **kw})


answer = answer_question  # the earlier name


# ----------------------------------------------------------------------------------------------- retrieval
class Retriever:
    """Dense retrieval: every passage embedded once with the MiniLM encoder, a query matched by cosine (notebook 09).

    ``search(query, k)`` returns the ``k`` best ``(passage, score)`` pairs, best first.
    """

    def __init__(self, docs: list[dict], encoder=None):
        from lmkit.embeddings import sentence_embeddings

        docs = list(docs)
        if not docs or not all(isinstance(d, dict) and str(d.get("text", "")).strip() for d in docs):
            raise ValueError("Retriever needs a non-empty list of passages like {'id': ..., 'text': ...}: "
                             "load them with lmkit.apps.passages()")
        self.docs, self.encoder = docs, encoder
        self.vectors = sentence_embeddings([self.doc_text(d) for d in docs], encoder)

    @staticmethod
    def doc_text(doc: dict) -> str:
        return f"{doc['title']}. {doc['text']}" if doc.get("title") else doc["text"]

    def scores(self, query: str) -> torch.Tensor:
        """Cosine similarity of ``query`` with every passage, ``[n_passages]``."""
        from lmkit.embeddings import sentence_embeddings

        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query {query!r} is empty: ask a question in words")
        return (sentence_embeddings([query], self.encoder) @ self.vectors.T)[0]

    def search(self, query: str, k: int = 1) -> list[tuple[dict, float]]:
        if not isinstance(k, int) or not 1 <= k <= len(self.docs):
            raise ValueError(f"k={k!r}: ask for between 1 and {len(self.docs)} passages")
        top = self.scores(query).topk(k)
        return [(self.docs[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def recall_at_k(retriever: Retriever, questions: list[dict], k: int = 1) -> float:
    """Fraction of questions whose own passage (``question["passage"]``) is among the top ``k`` (notebook 09)."""
    if not questions:
        raise ValueError("no questions given: pass e.g. lmkit.apps.qa_data()")
    hits = [q["passage"] in {d["id"] for d, _ in retriever.search(q["question"], k)} for q in questions]
    return sum(hits) / len(hits)


def qa_run(lm, questions: list[dict], mode: str = "closed", retriever: Retriever | None = None, *, k: int = 1,
           progress: bool = True):
    """Answer every question and score it; a pandas DataFrame, one row per question (notebook 09).

    ``mode``: ``"closed"`` (the question alone), ``"retrieved"`` (the top-``k`` passages found by ``retriever``)
    or ``"oracle"`` (the passage that holds the answer: the ceiling retrieval can reach).
    """
    import pandas as pd

    if mode not in ("closed", "retrieved", "oracle"):
        raise ValueError(f"mode={mode!r}: use 'closed', 'retrieved' or 'oracle'")
    if mode == "retrieved" and retriever is None:
        raise ValueError("mode='retrieved' needs a retriever: pass retriever=Retriever(passages())")
    by_id = {d["id"]: d for d in passages()} if mode == "oracle" else {}
    rows = []
    for q in tqdm(questions, desc=f"Q&A ({mode})", disable=not progress, leave=False):
        found, context = [], None
        if mode == "retrieved":
            found = [d for d, _ in retriever.search(q["question"], k)]
        elif mode == "oracle":
            found = [by_id[q["passage"]]]
        if found:
            context = "\n".join(d["text"] for d in found)
        reply = answer_question(lm, q["question"], context)
        rows.append({"id": q["id"], "kind": q.get("kind", ""), "question": q["question"],
                     "gold": q["answers"][0], "reply": reply,
                     "passage found": ",".join(d["id"] for d in found) if found else "",
                     "right passage": (q["passage"] in [d["id"] for d in found]) if found else None,
                     "exact": exact_match(reply, q["answers"]), "contains": contains_answer(reply, q["answers"]),
                     "answer first": answer_first(reply, q["answers"], q["question"])})
    return pd.DataFrame(rows)
