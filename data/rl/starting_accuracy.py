"""The bundled model's greedy accuracy on a split of ``data/rl/`` (its starting point before notebook 18's GRPO).

``OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 nice -n 19 python data/rl/starting_accuracy.py test 64``: the split, then the
budget of new tokens. Prompts in the chat template (:func:`lmkit.rl.prompt`), generated in batches
(:func:`lmkit.rl.sample`, greedy), scored by :func:`lmkit.rl.reward`; prints the accuracy with its 95% Wilson
interval, by operation, and what the replies cost.
"""
import os
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")
import torch  # noqa: E402

import lmkit  # noqa: E402
from lmkit import rl  # noqa: E402
from lmkit.evaluation import accuracy_interval  # noqa: E402

split = sys.argv[1] if len(sys.argv) > 1 else "test"
budget = int(sys.argv[2]) if len(sys.argv) > 2 else 64
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
lm = lmkit.load(device="cpu")
items = rl.load_split(split)
start = time.perf_counter()
out = rl.sample(lm, [rl.prompt(it) for it in items], do_sample=False, max_new_tokens=budget, batch_size=40)
seconds = time.perf_counter() - start
right = [rl.reward(text, it["answer"]) == 1.0 for text, it in zip(out.texts, items)]
low, high = accuracy_interval(sum(right), len(right))
print(f"{split}: greedy accuracy {sum(right)}/{len(right)} = {sum(right) / len(right):.1%} "
      f"(95% Wilson {low:.1%} to {high:.1%}), max_new_tokens={budget}")
for op in ("add", "sub"):
    hits = [r for r, it in zip(right, items) if it["op"] == op]
    print(f"  {op}: {sum(hits)}/{len(hits)}")
print(f"  replies with no number: {sum(rl.extract_answer(t) is None for t in out.texts)}; cut by the budget: "
      f"{out.finished.count(False)}; mean tokens per reply: {sum(map(len, out.completion_ids)) / len(items):.1f}; "
      f"{seconds:.0f} s")
