"""Peak memory of a block of code: the kernel's peak-RSS counter, the GPU allocator's peak, or a sampler (notebook 08).

One :class:`PeakMemory` for all of lmkit (notebooks 08, 12 and 14 and the benchmarks use it).
"""
from __future__ import annotations

import threading

import torch

__all__ = ["rss_bytes", "hwm_supported", "release_free_memory", "PeakMemory"]


def rss_bytes() -> int:
    """Resident memory of this process now, in bytes."""
    import psutil

    return psutil.Process().memory_info().rss


_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (e.g. ``VmHWM``, the peak resident memory) in bytes, or None."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS: write "5" to /proc/self/clear_refs (Linux)."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


_HWM_OK: bool | None = None


def hwm_supported() -> bool:
    """True when this kernel lets a process reset and read its own peak RSS (Linux ≥ 4.0, /proc mounted)."""
    global _HWM_OK
    if _HWM_OK is None:
        _HWM_OK = _status_bytes("VmHWM") is not None and _reset_hwm()
    return _HWM_OK


def release_free_memory() -> None:
    """Return freed heap pages to the OS (``gc.collect`` then glibc's ``malloc_trim``); a no-op without glibc.

    Memory freed by earlier work in the same process stays resident, and later work silently reuses it, so that
    its growth under-counts what it needs. :class:`PeakMemory` with ``release=True`` calls this on entry
    (notebook 12 compares the memory of successive fine-tuning runs in one kernel).
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_ACTIVE: list["PeakMemory"] = []  # open VmHWM blocks: a reset by an inner block must not lose an outer peak


class PeakMemory:
    """Context manager: the peak memory while its block runs (notebook 08).

    - GPU: ``torch.cuda.max_memory_allocated`` (reset on entry).
    - CPU on Linux (``method="hwm"``): the kernel's own peak-RSS counter. Entry resets it (``"5"`` written to
      /proc/self/clear_refs), exit reads ``VmHWM`` from /proc/self/status: every page the process touched counts,
      however briefly, with no thread and no sampling. Nested blocks work: a reset first hands the peak reached
      so far to every open block.
    - CPU elsewhere (``method="sample"``): the resident memory sampled every ``interval`` seconds by a thread;
      an allocation shorter than that can be missed.

    ``peak`` is the highest value, ``start`` the value on entry, ``delta = peak - start`` what the block added.
    ``method`` is "cuda", "hwm" or "sample"; pass ``method="sample"`` to force the portable sampler.
    ``release=True`` first hands freed heap pages back to the OS (:func:`release_free_memory`), so that ``delta``
    is not lowered by memory that earlier work freed but kept resident.
    """

    def __init__(self, device=None, interval: float = 0.002, method: str | None = None, *, release: bool = False):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if method not in (None, "sample", "hwm", "cuda"):
            raise ValueError(f"method={method!r} is unknown: use None (automatic), 'hwm', 'sample' or 'cuda'")
        if method is None:
            method = "cuda" if self.device.type == "cuda" else "hwm" if hwm_supported() else "sample"
        if method == "hwm" and not hwm_supported():
            raise ValueError("method='hwm' needs Linux's /proc/self/clear_refs: use method='sample' here")
        self.method = method
        self.interval, self.release = interval, release
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    @property
    def delta(self) -> int:
        return self.peak - self.start

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> "PeakMemory":
        if self.release and self.method != "cuda":
            release_free_memory()
        if self.method == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = self.peak = torch.cuda.memory_allocated(self.device)
        elif self.method == "hwm":
            hwm = _status_bytes("VmHWM") or 0
            for outer in _ACTIVE:
                outer.peak = max(outer.peak, hwm)
            _reset_hwm()
            self.start = self.peak = _status_bytes("VmRSS") or rss_bytes()
            _ACTIVE.append(self)
        else:
            self.start = self.peak = rss_bytes()
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
        elif self.method == "hwm":
            self.peak = max(self.peak, _status_bytes("VmHWM") or 0)
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
