"""Exercise checkers of notebook 02 (tokens and embeddings)."""
from __future__ import annotations

from .registry import _close, exercise


def _ids(lm, text: str) -> list[int]:
    return lm.tokenizer.encode(text, add_special_tokens=False)


@exercise("02.1", hint="answer with a pair of strings (English word, Chinese word). Long, rare English words split "
                       "into several pieces (a leading space is allowed); the most frequent Chinese characters got a "
                       "piece of their own. Check each with len(tok.encode(w, add_special_tokens=False)).")
def _split_and_single(answer, *, lm):
    english, chinese = answer
    if not (isinstance(english, str) and isinstance(chinese, str)):
        return False
    word = english.strip()
    is_english = word.isascii() and word.isalpha()
    is_chinese = bool(chinese) and all("\u4e00" <= c <= "\u9fff" for c in chinese)
    return is_english and len(_ids(lm, english)) >= 4 and is_chinese and len(_ids(lm, chinese)) == 1


@exercise("02.2", hint="answer with one float: h @ (x @ W), with x the one-hot row of ' Paris' (torch.nn.functional."
                       "one_hot) and h the last position of the last hidden state (hidden_states[-1][0, -1], already "
                       "after the final norm). It should equal the model's logit for ' Paris'.")
def _tied_logit(answer, *, lm, prompt="The capital of France is", word=" Paris"):
    import torch

    (token,) = _ids(lm, word)
    with torch.inference_mode():
        logits = lm.model(lm.encode(prompt)).logits[0, -1].float()
    return _close(answer, logits[token].item(), rel=1e-4, abs_=1e-4)


@exercise("02.3", hint="answer with a pair (bat, gap): bat a dict {'animal': [...], 'sport': [...]} of at least two "
                       "sentences each containing 'bat' once as a whole word, with the words that give its sense "
                       "before it (no two sentences may read the same up to 'bat': the model sees only the left "
                       "context); gap = mean centred cosine over same-sense pairs minus over different-sense pairs, "
                       "at the last layer, centred on E.mean_hidden_state of these sentences' hidden states, exactly "
                       "as for 'bank' in section 4.")
def _bat_gap(answer, *, lm, word="bat"):
    import re
    from itertools import combinations, product

    import torch

    from lmkit import embeddings as E

    senses, gap = answer
    senses = {k: list(v) for k, v in dict(senses).items()}
    whole = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")
    if len(senses) != 2 or any(len(v) < 2 or not all(isinstance(t, str) and len(whole.findall(t)) == 1
                                                       and t.count(word) == 1 for t in v) for v in senses.values()):
        return False  # each sentence holds the word once, as a whole word ("bats", "battle" do not count)
    texts = [t for v in senses.values() for t in v]
    seen = [t[:t.index(word) + len(word)] for t in texts]
    if len(set(seen)) != len(seen):
        return False  # two sentences read the same up to the word: the causal model gives it the same vector
    states = {t: E.hidden_states_of(lm, t)[1] for texts in senses.values() for t in texts}
    vec = {t: h[:, E.word_span(lm, t, word)].mean(1) for t, h in states.items()}
    center = E.mean_hidden_state(list(states.values()))
    a, b = senses.values()
    same = [p for texts in (a, b) for p in combinations(texts, 2)]
    mean = lambda pairs: torch.stack([E.layer_cosine(vec[x], vec[y], center) for x, y in pairs]).mean(0)[-1]
    return _close(gap, (mean(same) - mean(list(product(a, b)))).item(), rel=1e-3, abs_=1e-4)


@exercise("02.4", hint="answer with one float: rotate only the key, by the relative position 998 - 1000 = -2 "
                       "(E.apply_rope(k[None], [-2], theta)), and take its dot product with the unrotated query. "
                       "RoPE scores depend on n - m only.")
def _relative_score(answer, *, q, k, theta):
    from lmkit import embeddings as E

    q, k = q.detach().float().reshape(1, -1), k.detach().float().reshape(1, -1)
    expected = (E.apply_rope(q, [1000], theta) @ E.apply_rope(k, [998], theta).T).item()
    return _close(answer, expected, rel=1e-3, abs_=1e-3)
