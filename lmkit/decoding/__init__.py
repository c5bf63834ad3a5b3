"""Decoding as a one-way stack: each module imports only the ones listed before it (notebooks 06, 08 and 07).

- :mod:`lmkit.decoding.settings`: the settings named as in transformers, their check, prompt encoding, EOS ids and
  the list of transformers logits processors;
- :mod:`lmkit.decoding.grammar`: JSON-schema / regex output as one more logits processor (llguidance);
- :mod:`lmkit.decoding.loop`: the decode generator (prefill, then one cached forward pass per token) and the
  helper that holds back incomplete UTF-8 characters;
- :mod:`lmkit.decoding.speculative`: speculative decoding split into propose, verify-greedy and verify-sampled;

:mod:`lmkit.generate` sits on top and is what notebooks call (``stream``, ``generate``, ``speculative``, ...).
This file imports nothing, so importing any one module of the stack loads only what lies below it.
"""
