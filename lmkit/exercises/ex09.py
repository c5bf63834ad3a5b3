"""Exercise checkers of notebook 09 (serving many users)."""
from __future__ import annotations

import math

from .registry import _close, exercise


@exercise("09.1", hint="answer with two integers (paged, contiguous). Each request ends holding n = prompt + reply "
                       "tokens. Paged: its blocks hold ceil(n / block_size) * block_size slots, so it leaves that "
                       "minus n empty. Contiguous: it reserved prompt + max_new_tokens, so it leaves that minus n.")
def _empty_slots(answer, *, trace, served, block_size: int):
    paged, contiguous = answer
    lengths = [len(r.prompt_ids) + len(s.output) for r, s in zip(trace, served)]
    want_paged = sum(math.ceil(n / block_size) * block_size - n for n in lengths)
    want_contiguous = sum(len(r.prompt_ids) + r.max_new_tokens - n for r, n in zip(trace, lengths))
    return int(paged) == want_paged and int(contiguous) == want_contiguous


@exercise("09.2", hint="each request of a static batch is computed at every one of its batch's `batch_steps`; "
                       "after its own reply ends (len(output) steps) the rest are idle. Sum the idle steps over the "
                       "requests and divide by the sum of batch_steps.")
def _idle_share(answer, *, served):
    total = sum(s.batch_steps for s in served)
    return _close(answer, sum(s.batch_steps - len(s.output) for s in served) / total, rel=1e-6)


@exercise("09.3", hint="answer with two numbers (L, lambda * W). L: the area under 'requests in the system' over "
                       "time (the sum over requests of done - arrival) divided by the makespan, max(done) - "
                       "min(arrival). lambda: requests / makespan; W: the mean of done - arrival.")
def _little(answer, *, served):
    L, lam_w = answer
    makespan = max(s.done for s in served) - min(s.arrival for s in served)
    area = sum(s.done - s.arrival for s in served)
    want = area / makespan
    return _close(L, want, rel=1e-6) and _close(lam_w, want, rel=1e-6)
