"""The hand-written fast decoder's first home, kept so that ``from lmkit.fastdecode import FastDecoder`` still
works (notebooks 08 and 11). The code lives in :mod:`lmkit.profile.fastdecode`, beside the other decoder that
notebook 08 times, :class:`lmkit.profile.decoding.LeanDecoder`."""
from lmkit.profile.fastdecode import WEIGHTS, FastDecoder, _Dense, _Int4, _Int8, _Llama  # noqa: F401

__all__ = ["WEIGHTS", "FastDecoder"]
