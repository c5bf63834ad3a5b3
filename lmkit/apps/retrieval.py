"""Retrieval-augmented question answering: the MiniLM encoder finds the passage, the model answers with it (notebook 15)."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from lmkit import checks
from lmkit.apps.chat import answer_question, ask
from lmkit.apps.data import passages, qa_data
from lmkit.apps.metrics import answer_first, contains_answer, exact_match
from lmkit.env import show_progress

__all__ = ['Retriever', 'recall_at_k', 'qa_run']

# ----------------------------------------------------------------------------------------------- retrieval
class Retriever:
    """Dense retrieval: every passage embedded once with the MiniLM encoder, a query matched by cosine (notebook 15).

    ``search(query, k)`` returns the ``k`` best ``(passage, score)`` pairs, best first.
    """

    def __init__(self, docs: list[dict], encoder=None):
        from lmkit.embeddings import sentence_embeddings

        docs = list(docs)
        if not docs or not all(isinstance(d, dict) and str(d.get("text", "")).strip() for d in docs):
            checks.fail("Retriever needs a non-empty list of passages like {'id': ..., 'text': ...}: "
                        "load them with lmkit.apps.passages()")
        self.docs, self.encoder = docs, encoder
        self.vectors = sentence_embeddings([self.doc_text(d) for d in docs], encoder)

    @staticmethod
    def doc_text(doc: dict) -> str:
        return f"{doc['title']}. {doc['text']}" if doc.get("title") else doc["text"]

    def scores(self, query: str) -> torch.Tensor:
        """Cosine similarity of ``query`` with every passage, ``[n_passages]``."""
        from lmkit.embeddings import sentence_embeddings

        checks.text("query", query, fix="ask a question in words")
        return (sentence_embeddings([query], self.encoder) @ self.vectors.T)[0]

    def search(self, query: str, k: int = 1) -> list[tuple[dict, float]]:
        k = checks.integer("k", k, low=1, high=len(self.docs), fix=f"ask for between 1 and {len(self.docs)} passages")
        top = self.scores(query).topk(k)
        return [(self.docs[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def recall_at_k(retriever: Retriever, questions: list[dict], k: int = 1) -> float:
    """Fraction of questions whose own passage (``question["passage"]``) is among the top ``k`` (notebook 15)."""
    if not questions:
        checks.fail("no questions given: pass e.g. lmkit.apps.qa_data()")
    n = len(retriever.docs)
    k = checks.integer("k", k, low=1, high=n, fix=f"ask for between 1 and {n} passages")
    hits = [q["passage"] in {d["id"] for d, _ in retriever.search(q["question"], k)} for q in questions]
    return sum(hits) / len(hits)


def qa_run(lm, questions: list[dict], mode: str = "closed", retriever: Retriever | None = None, *, k: int = 1,
           progress: bool | None = None):
    """Answer every question and score it; a pandas DataFrame, one row per question (notebook 15).

    ``mode``: ``"closed"`` (the question alone), ``"retrieved"`` (the top-``k`` passages found by ``retriever``)
    or ``"oracle"`` (the passage that holds the answer: the ceiling retrieval can reach).
    """
    import pandas as pd

    checks.one_of("mode", mode, ("closed", "retrieved", "oracle"))
    if mode == "retrieved" and retriever is None:
        checks.fail("mode='retrieved' needs a retriever: pass retriever=Retriever(passages())")
    k = checks.integer("k", k, low=1, fix="the number of passages to read, such as 1")
    show_progress(progress)
    by_id = {d["id"]: d for d in passages()} if mode == "oracle" else {}
    rows = []
    for q in tqdm(questions, desc=f"Q&A ({mode})", disable=not show_progress(progress), leave=False):
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
