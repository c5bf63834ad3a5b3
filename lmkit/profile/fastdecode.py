"""A Llama decoder written by hand for fast greedy decoding on a CPU (notebook 08).

Notebook 08's profiler shows where ``model.generate`` loses time on a CPU: about 1,700 small operators per token,
each paying its dispatch cost, around matrix-vector products that read fp32 weights. This module removes both
costs the way llama.cpp does, in plain PyTorch, and writing it by hand is the lesson:

- the weights of each layer are fused (Q, K and V in one matrix; gate and up in one) and, optionally, stored in
  4 bits per weight in groups of 32 (``weights="int4"``: the Q4_1 grid of the bundled GGUF file, run by PyTorch's
  own int4 CPU kernel) or in 8 bits with one scale per output row (``weights="int8"``); a quantized model keeps
  its output head in 8 bits either way (the GGUF file stores the tied embedding in 8 bits: in 4 bits the
  perplexity of notebook 08's text rises by about 7%);
- the KV cache is a fixed fp32 buffer per layer written in place, and attention is three small products with a
  mask, so every decode step has the same shapes;
- that fixed-shape step is compiled once with ``torch.compile`` (``compile=True``): one C++ graph per token
  instead of thousands of Python-dispatched operators. The prefill stays eager (its shape changes with the prompt).

:class:`FastDecoder` reads the weights of a transformers Llama-family model (SmolLM2, TinyLlama, Llama …) and
returns the same :class:`lmkit.profile.GenerationStats` as the other timed loops of notebook 08. In fp32 with
``weights=None`` its tokens equal greedy ``model.generate``'s. One sequence at a time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmkit import checks
from lmkit.layers import apply_rotary, head_dim, rms_norm, rope_cos_sin
from lmkit.profile.generation import GenerationStats, as_model, timed_greedy
from lmkit.profile.timing import Timing, time_fn

WEIGHTS = (None, "int8", "int4")


class _Dense(nn.Module):
    """``x @ wᵀ`` with the weight stored as is (fp32, bf16 or fp16)."""

    def __init__(self, w: torch.Tensor, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("w", w.detach().to(dtype).contiguous())

    def forward(self, x):
        return F.linear(x, self.w)


class _Int8(nn.Module):
    """Weight-only int8: one scale per output row, ``round(w / scale)`` in [-127, 127]; PyTorch's int8 kernel."""

    def __init__(self, w: torch.Tensor, dtype: torch.dtype):
        super().__init__()
        w = w.detach().float()
        scale = w.abs().amax(1).clamp(min=1e-12) / 127
        self.register_buffer("w", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(dtype))

    def forward(self, x):
        return torch._weight_int8pack_mm(x, self.w, self.scale)


class _Int4(nn.Module):
    """Weight-only int4 in groups of ``group`` weights along a row: ``w ≈ min + q × (max − min) / 15``, q in 0..15.

    That is the Q4_1 format of llama.cpp. PyTorch's CPU kernel wants the weights packed two per byte and, per group,
    a scale and a "zero" with ``w = (q − 8) × scale + zero``; its rows must come in multiples of 16, so a matrix
    with other row counts (a vocabulary of 49,155, say) is padded with zero rows and the output cut back.
    """

    def __init__(self, w: torch.Tensor, dtype: torch.dtype, group: int = 32):
        super().__init__()
        n, k = w.shape
        if k % group:
            raise ValueError(f"int4 needs every input size ({k} here) to be a multiple of group={group}: pass a group "
                             f"that divides it (e.g. group=16) or weights='int8'")
        self.n, self.group = n, group
        pad = -n % 16
        w = F.pad(w.detach().float(), (0, 0, 0, pad)).view(n + pad, k // group, group)
        lo, hi = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
        scale = (hi - lo).clamp(min=1e-12) / 15
        q = torch.round((w - lo) / scale).clamp(0, 15).to(torch.int32).view(n + pad, k)
        self.register_buffer("w", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        zero = lo + 8 * scale
        sz = torch.stack([scale.view(n + pad, -1), zero.view(n + pad, -1)], -1).transpose(0, 1).contiguous()
        self.register_buffer("scale_zero", sz.to(dtype))

    def forward(self, x):
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.w, self.group, self.scale_zero)
        return y[..., :self.n] if y.shape[-1] != self.n else y


class _Llama(nn.Module):
    """The decoder stack with fused weights and a fixed per-layer KV cache; ``forward(ids, pos)`` → logits."""

    def __init__(self, hf_model, dtype: torch.dtype, weights: str | None, context_length: int, group: int):
        super().__init__()
        c, base = hf_model.config, hf_model.model
        self.context_length = context_length
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = head_dim(c)
        self.eps = c.rms_norm_eps

        def linear(w):
            if weights == "int4":
                return _Int4(w, dtype, group)
            return _Int8(w, dtype) if weights == "int8" else _Dense(w, dtype)

        self.register_buffer("embed", base.embed_tokens.weight.detach().to(dtype).contiguous())
        self.qkv, self.o, self.gate_up, self.down = (nn.ModuleList() for _ in range(4))
        for layer in base.layers:
            a, m = layer.self_attn, layer.mlp
            self.qkv.append(linear(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])))
            self.o.append(linear(a.o_proj.weight))
            self.gate_up.append(linear(torch.cat([m.gate_proj.weight, m.up_proj.weight])))
            self.down.append(linear(m.down_proj.weight))
        stack = lambda ws: torch.stack([w.detach() for w in ws]).to(dtype)  # noqa: E731
        self.register_buffer("norm1", stack(layer.input_layernorm.weight for layer in base.layers))
        self.register_buffer("norm2", stack(layer.post_attention_layernorm.weight for layer in base.layers))
        self.register_buffer("norm_out", base.norm.weight.detach().to(dtype))
        tied = hf_model.lm_head.weight.data_ptr() == base.embed_tokens.weight.data_ptr()
        if weights is None and tied:
            self.head = _Dense(self.embed, dtype)  # the very same tensor: the head reads all of it every token
        elif weights:  # 8 bits for the head, as in the GGUF file (its embedding is Q8_0): 4 bits cost perplexity
            self.head = _Int8(hf_model.lm_head.weight, dtype)
        else:
            self.head = _Dense(hf_model.lm_head.weight, dtype)
        # RoPE tables for every position, from the model's own inverse frequencies (rotate-half convention)
        cos, sin = rope_cos_sin(torch.arange(context_length), frequencies=base.rotary_emb.inv_freq.float().cpu())
        scaling = getattr(base.rotary_emb, "attention_scaling", 1.0)
        self.register_buffer("cos", (cos * scaling).to(dtype))
        self.register_buffer("sin", (sin * scaling).to(dtype))
        self.caches = nn.ModuleList()
        for _ in base.layers:  # one buffer per layer: compiled code writes a slot in place, copying nothing else
            cache = nn.Module()
            cache.register_buffer("k", torch.zeros(self.kv_heads, context_length, self.head_dim))
            cache.register_buffer("v", torch.zeros(self.kv_heads, context_length, self.head_dim))
            self.caches.append(cache)

    def _norm(self, x, w):
        return rms_norm(x, w, self.eps)

    def forward(self, ids: torch.Tensor, pos: torch.Tensor, last_only: bool = True) -> torch.Tensor:
        t = ids.shape[1]
        x = F.embedding(ids[0], self.embed)  # (t, hidden)
        cos, sin = self.cos[pos], self.sin[pos]
        group = self.heads // self.kv_heads
        visible = (torch.arange(self.context_length, device=ids.device)[None, :] <= pos[:, None]).repeat(group, 1)
        nq, nkv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for i, cache in enumerate(self.caches):
            q, k, v = self.qkv[i](self._norm(x, self.norm1[i])).split([nq, nkv, nkv], -1)
            q = apply_rotary(q.view(t, self.heads, self.head_dim).transpose(0, 1), cos, sin)
            k = apply_rotary(k.view(t, self.kv_heads, self.head_dim).transpose(0, 1), cos, sin)
            cache.k[:, pos] = k.float()
            cache.v[:, pos] = v.view(t, self.kv_heads, self.head_dim).transpose(0, 1).float()
            # grouped-query attention in fp32: the `group` query heads that share a KV head form one matrix
            qg = q.float().reshape(self.kv_heads, group * t, self.head_dim)
            scores = (qg @ cache.k.transpose(-1, -2)) * self.head_dim ** -0.5
            probs = scores.masked_fill(~visible, float("-inf")).softmax(-1)
            att = (probs @ cache.v).view(self.heads, t, self.head_dim).transpose(0, 1).reshape(t, nq)
            x = x + self.o[i](att.to(x.dtype))
            gate, up = self.gate_up[i](self._norm(x, self.norm2[i])).chunk(2, -1)
            x = x + self.down[i](F.silu(gate) * up)
        if last_only:
            x = x[-1:]
        return self.head(self._norm(x, self.norm_out))


class FastDecoder:
    """Greedy decoding of one sequence with a hand-written, optionally compiled and quantized Llama (notebook 08).

    ``FastDecoder(lm, weights="int4", compile=True)`` then ``decoder(input_ids, n)`` → :class:`GenerationStats`.

    - ``weights``: None (the model's weights in ``dtype``), ``"int8"`` (per-row scales) or ``"int4"`` (groups of
      ``group``; the Q4_1 grid; the output head in int8). Quantized weights run on the CPU only.
    - ``dtype``: of activations and unquantized weights; default bfloat16 with quantized weights (PyTorch's int4
      and int8 CPU kernels are fast for bf16 inputs only), else the model's dtype. The KV cache is always fp32.
    - ``compile``: ``torch.compile`` the one-token step (fixed shapes, one graph); ``compile_s`` is the first
      call's time, compilation included.
    - ``context_length``: prompt + new tokens must fit; the cache and RoPE tables are sized to it.
    """

    def __init__(self, lm_or_model, *, weights: str | None = "int4", dtype: torch.dtype | None = None,
                 compile: bool = False, context_length: int = 512, group: int = 32):
        model = as_model(lm_or_model)
        config = model.config
        if getattr(config, "model_type", None) != "llama":
            raise ValueError(f"FastDecoder reads Llama-family models; got model_type="
                             f"{getattr(config, 'model_type', None)!r}: use lmkit.profile.LeanDecoder for it instead")
        if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
            raise ValueError("FastDecoder has no bias terms and this model's projections have them "
                             "(attention_bias or mlp_bias): use lmkit.profile.LeanDecoder for it instead")
        rope_type = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
        if rope_type in ("dynamic", "longrope"):
            raise ValueError(f"rope_type={rope_type!r} changes RoPE with the length; FastDecoder's tables are fixed: "
                             f"use lmkit.profile.LeanDecoder for it instead")
        checks.one_of("weights", weights, WEIGHTS)
        checks.boolean("compile", compile)
        context_length = checks.integer("context_length", context_length, low=1, fix="prompt + new tokens, such as 512")
        group = checks.integer("group", group, low=1, fix="int4 weights per scale, such as 32")
        if dtype is not None and not isinstance(dtype, torch.dtype):
            checks.fail(f"dtype={checks.show(dtype)} is not a torch.dtype: pass e.g. torch.bfloat16, or None")
        device = next(model.parameters()).device
        if weights and device.type != "cpu":
            raise ValueError(f"weights={weights!r} uses PyTorch's CPU kernels; the model is on {device}: "
                             f"pass weights=None (with dtype=torch.float16 on a GPU)")
        if dtype is None:
            dtype = torch.bfloat16 if weights else next(model.parameters()).dtype
        self.weights, self.dtype, self.device, self.compile_s = weights, dtype, device, 0.0
        with torch.no_grad():
            self.net = _Llama(model, dtype, weights, context_length, group).to(device).eval()
        self.context_length = context_length
        self._step = self.net
        if compile:
            self._step = torch.compile(self.net, dynamic=False, fullgraph=True)
        self._compiled = compile

    def weight_bytes(self) -> int:
        """Bytes of every weight buffer: packed weights, their scales, norms, the embedding (a tied one once)."""
        seen, total = set(), 0
        for name, t in self.net.named_buffers():
            if name.startswith(("caches.", "cos", "sin")) or t.data_ptr() in seen:
                continue
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
        return total

    def decode_bytes(self, context: int) -> int:
        """Bytes read per decode step with ``context`` tokens cached: every weight once + the whole fp32 KV buffer.

        Attention reads all ``context_length`` slots of the buffer at every step, the empty ones masked (fixed shapes are
        what lets ``torch.compile`` make one graph), so the cache counts ``context_length`` tokens whatever ``context`` is;
        ``context`` is checked against it. An embedding table that is not also the output head (the quantized head
        is a copy) is only looked up: one row counts. Raises ``ValueError`` if ``context`` is outside 0..context_length.
        """
        checks.integer("context", context, low=0, high=self.context_length,
                       fix=f"use 0..context_length={self.context_length} (the tokens the cache holds)")
        net = self.net
        lookup = 0
        if getattr(net.head, "w", net.embed[:0]).data_ptr() != net.embed.data_ptr():
            lookup = (net.embed.shape[0] - 1) * net.embed.shape[1] * net.embed.element_size()
        kv = len(net.caches) * 2 * net.kv_heads * net.head_dim * self.context_length * 4
        return self.weight_bytes() - lookup + kv

    def matmul_bandwidth(self, *, repeats: int = 5) -> tuple[float, Timing]:
        """Bytes/s at which the matrix products of ONE decode step read their weights, timed alone (notebook 08).

        Every projection of every layer and the output head run once, eagerly, on a random activation row: the
        step's matrix-vector work with nothing around it. Its bytes over its time is the speed of the weight
        format's kernel (dense, int8 or int4) on this machine, the ceiling of a decoder that uses it.
        """
        repeats = checks.integer("repeats", repeats, low=1, fix="pass e.g. repeats=5")
        net = self.net
        mats = [m for group in (net.qkv, net.o, net.gate_up, net.down) for m in group] + [net.head]
        inputs = []
        for m in mats:
            k = m.w.shape[1] * (2 if isinstance(m, _Int4) else 1)  # int4 packs two weights per byte
            inputs.append(torch.randn(1, k, dtype=self.dtype, device=self.device))
        n_bytes = sum(b.numel() * b.element_size() for m in mats for b in m.buffers())

        def run():
            with torch.inference_mode():
                for m, x in zip(mats, inputs):
                    m(x)

        timing = time_fn(run, repeats=repeats, warmup=1, device=self.device, label=f"matmuls of a step, {self.weights}")
        return n_bytes / timing.median, timing

    def _check(self, input_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        if input_ids.shape[0] != 1:
            raise ValueError(f"FastDecoder decodes one sequence; got a batch of {input_ids.shape[0]}: "
                             f"loop over the rows or use model.generate for batches")
        if input_ids.shape[1] + max_new_tokens > self.context_length:
            raise ValueError(f"prompt {input_ids.shape[1]} + {max_new_tokens} new tokens exceed context_length="
                             f"{self.context_length}: build FastDecoder(..., context_length={input_ids.shape[1] + max_new_tokens})")
        return input_ids.to(self.device)

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits at every position of ``input_ids`` (1, T) in one eager pass (for perplexity); shape (1, T, vocab)."""
        input_ids = self._check(input_ids, 0)
        with torch.inference_mode():
            pos = torch.arange(input_ids.shape[1], device=self.device)
            return self.net(input_ids, pos, last_only=False).float()[None]

    def __call__(self, input_ids: torch.Tensor, max_new_tokens: int = 32) -> GenerationStats:
        max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="generate at least 1 token")
        input_ids = self._check(input_ids, max_new_tokens)
        t = input_ids.shape[1]
        first_call = self._compiled and not self.compile_s
        stats = timed_greedy(
            lambda: self.net(input_ids, torch.arange(t, device=self.device)).argmax(-1, keepdim=True),
            lambda ids, i: self._step(ids, torch.tensor([t + i], device=self.device)).argmax(-1, keepdim=True),
            max_new_tokens, prompt_shape=(1, t), device=self.device)
        if first_call:
            self.compile_s = stats.stamps[-1]
        return stats
