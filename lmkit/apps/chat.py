"""Translation, summaries and question answering through the chat template (notebook 15)."""
from __future__ import annotations

from lmkit import checks
from lmkit.apps.metrics import first_line

__all__ = ['ask', 'translate', 'summarise', 'qa_prompt', 'answer_question']

# ----------------------------------------------------------------------------------------------- chat tasks
def ask(lm, message: str, *, max_new_tokens: int = 48, stop_at_newline: bool = False, system: str | None = None) -> str:
    """Greedy reply of the model to one user message through its chat template (notebook 15).

    ``stop_at_newline`` ends the reply at its first line break (short answers); ``system`` replaces the
    template's default system prompt. Built on :func:`lmkit.generate.stream`.
    """
    from lmkit.generate import stream

    checks.text("message", message, fix="pass the user's message")
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="ask for at least one new token")
    checks.boolean("stop_at_newline", stop_at_newline)
    if system is not None:
        checks.text("system", system, fix="pass a system prompt, or None for the template's default")
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
    """Translate ``text`` into ``target`` through the chat template (notebook 15)."""
    checks.text("text", text, fix="pass the sentence to translate")
    checks.text("target", target, fix="name the language, e.g. 'French'")
    return ask(lm, f"Translate this sentence into {target}. Reply with the translation only.\n\n{text}",
               stop_at_newline=True, **{"max_new_tokens": 32, **kw})


def summarise(lm, text: str, **kw) -> str:
    """A one-sentence summary of ``text`` through the chat template (notebook 15)."""
    checks.text("text", text, fix="pass the text to summarise")
    return ask(lm, f"Summarise this text in one short sentence.\n\n{text}", **{"max_new_tokens": 48, **kw})


def qa_prompt(question: str, context: str | None = None) -> str:
    """The user message for a question, with or without a passage to read (notebook 15)."""
    checks.text("question", question, fix="ask a question in words")
    if context is not None:
        checks.text("context", context, fix="pass the passage to read, or None for a closed-book question")
    if context is None:
        return f"Answer the question with a few words only.\n\nQuestion: {question}"
    return (f"Read the passage and answer the question with a few words only.\n\nPassage: {context}\n\n"
            f"Question: {question}")


def answer_question(lm, question: str, context: str | None = None, **kw) -> str:
    """The model's short answer to ``question``, reading ``context`` first if given (notebook 15).

    (``lmkit.finetune.greedy_answers`` is another thing: batched greedy replies to fine-tuning prompts.)
    """
    return ask(lm, qa_prompt(question, context), stop_at_newline=True, **{"max_new_tokens": 24, **kw})


answer = answer_question  # the earlier name
