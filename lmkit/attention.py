"""Self-attention made visible: recomputed from the weights, mapped, explored, rolled out, read by layer (notebook 03).

- :func:`attentions` gives every layer's and head's attention probabilities for a text (switching to eager attention
  when the fast ``sdpa`` kernel would return none);
- :func:`recompute` rebuilds one layer's probabilities from the layer's input and its weights alone, by the formula
  ``softmax(QKᵀ/√d_k + mask)``, and :func:`verify` checks it, with the block output, against the model for every layer;
- :func:`plot_head`, :func:`plot_grid`, :func:`plot_head_view`, :func:`plot_head_stats` draw the maps;
  :func:`head_stats` measures entropy and classifies heads by pattern;
- :class:`Explorer` is the ipywidgets panel; :func:`rollout` and :func:`logit_lens` read across layers.
"""
from __future__ import annotations

import io
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

MAX_TOKENS = 256
"""Longest text :func:`attentions` accepts: 30 layers × 9 heads × T² floats is 71 MB at T=256, 1.1 GB at T=1024."""

EXPLORER_MAX_TOKENS = 64
"""The explorer truncates longer texts (with a visible note): beyond this the token labels cannot be read."""

GAMMA = 0.5
"""The explorer's colour scale: probabilities 0..1 shown as p**0.5, so weak weights stay visible next to a sink."""

HEAD_VIEW_MIN = 0.02
"""Head-view lines below this probability are not drawn."""

HEAD_CLASSES = ("previous-token", "first-token", "diagonal", "broad", "mixed")


# ----------------------------------------------------------------------------------------------- inputs
def _ids(lm, text: str, max_tokens: int | None) -> torch.Tensor:
    """``[1, T]`` ids of ``text``; empty or too long texts raise a one-line ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text={text!r} is empty: pass a non-empty string")
    ids = lm.encode(text)
    n = ids.shape[1]
    if max_tokens is not None and n > max_tokens:
        raise ValueError(f"text has {n} tokens, more than max_tokens={max_tokens}: pass a shorter text "
                         f"(or raise max_tokens, at the cost of memory that grows as T²)")
    return ids


def token_labels(lm, ids) -> list[str]:
    """One readable label per token id: the decoded text, whitespace-only tokens made visible (notebook 03)."""
    ids = torch.as_tensor(ids).flatten().tolist()
    return [_visible(lm.tokenizer.decode([i])) for i in ids]


def _layers(model):
    """The decoder layers of a Llama-style causal LM."""
    try:
        return model.model.layers
    except AttributeError:
        raise ValueError(f"{type(model).__name__} has no .model.layers: lmkit.attention reads Llama-style decoders "
                         "(LlamaForCausalLM and relatives)") from None


def _check_layer(lm, layer: int) -> int:
    n = lm.model.config.num_hidden_layers
    if not isinstance(layer, (int, np.integer)) or not -n <= layer < n:
        raise ValueError(f"layer={layer!r} is out of range: the model has {n} layers, use 0..{n - 1}")
    return int(layer) % n


@contextmanager
def eager_attention(model):
    """Run ``model`` with eager attention inside the block, restoring its implementation after (notebook 03).

    The ``sdpa`` and flash kernels never materialise the probabilities, so ``output_attentions`` comes back
    empty (or ``None``) under them; eager attention computes ``softmax(QKᵀ/√d_k)`` explicitly.
    """
    before = getattr(model.config, "_attn_implementation", "eager")
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if before != "eager":
            model.set_attn_implementation(before)


# ----------------------------------------------------------------------------------------------- the model's own
def attentions(lm, text: str, *, max_tokens: int = MAX_TOKENS) -> tuple[list[str], torch.Tensor]:
    """``(tokens, A)`` with ``A[layer, head, query, key]`` the model's attention probabilities, float32 on CPU.

    Never empty: the model is switched to eager attention for the call when it runs another kernel (notebook 03).
    """
    return _attentions_of_ids(lm, _ids(lm, text, max_tokens))


def _attentions_of_ids(lm, ids: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    with eager_attention(lm.model), torch.inference_mode():
        out = lm.model(ids, output_attentions=True, use_cache=False)
    att = out.attentions
    if not att or any(a is None or a.numel() == 0 for a in att):
        raise RuntimeError(f"{lm.name} returned no attention weights even with eager attention: this architecture "
                           "does not expose them")
    return token_labels(lm, ids[0]), torch.stack([a[0] for a in att]).float().cpu()


# ----------------------------------------------------------------------------------------------- from the formula
@dataclass
class Steps:
    """Every intermediate tensor of one attention block, recomputed by hand (notebook 03).

    Shapes for ``T`` tokens, ``H`` query heads, ``G`` key/value heads, head size ``d_k``, model width ``d``.
    """

    x: torch.Tensor          # [T, d]       the layer's input (the residual stream)
    x_norm: torch.Tensor     # [T, d]       after the input RMSNorm
    q: torch.Tensor          # [H, T, d_k]  queries X·W_Q, split into heads, before RoPE
    k: torch.Tensor          # [G, T, d_k]  keys X·W_K
    v: torch.Tensor          # [G, T, d_k]  values X·W_V
    q_rot: torch.Tensor      # [H, T, d_k]  queries after RoPE
    k_rot: torch.Tensor      # [G, T, d_k]  keys after RoPE
    scores: torch.Tensor     # [H, T, T]    QKᵀ/√d_k with -inf above the diagonal
    probs: torch.Tensor      # [H, T, T]    softmax over the keys
    context: torch.Tensor    # [H, T, d_k]  probs · V for each head
    output: torch.Tensor     # [T, d]       concat(heads) · W_O, the block's output (added to the residual)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / sqrt(mean(x²) + eps) * weight`` over the last axis (notebook 03)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary position embedding of ``x[..., T, d_k]`` at positions 0..T-1, in the rotate-half layout (notebook 03).

    Dimension ``i`` (``i < d_k/2``) and ``i + d_k/2`` form a pair rotated by the angle ``pos · theta^(-2i/d_k)``.
    """
    t, d_k = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, d_k, 2, dtype=torch.float32) / d_k))
    angles = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]          # [T, d_k/2]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    rotated = torch.cat([-x[..., d_k // 2:], x[..., :d_k // 2]], dim=-1)
    return x * cos.to(x) + rotated * sin.to(x)


def attention_steps(lm, hidden: torch.Tensor, layer: int) -> Steps:
    """Layer ``layer``'s attention block applied by hand to its input ``hidden`` (``[T, d]`` or ``[1, T, d]``).

    Only the layer's weights and the config are read: RMSNorm, Q/K/V projections, RoPE, grouped-query sharing,
    causal mask, scaling by 1/√d_k, softmax, the weighted sum of values and the output projection (notebook 03).
    """
    layer = _check_layer(lm, layer)
    cfg = lm.model.config
    rope_params = getattr(cfg, "rope_parameters", None) or {"rope_type": "default",
                                                              "rope_theta": getattr(cfg, "rope_theta", 10000.0)}
    if rope_params.get("rope_type", "default") != "default":
        raise ValueError(f"rope_type={rope_params['rope_type']!r} is not supported by recompute: "
                         "it implements the original RoPE (rope_type='default') only")
    block = _layers(lm.model)[layer]
    attn = block.self_attn
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    d_k = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    f32 = dict(dtype=torch.float32, device="cpu")
    with torch.inference_mode():
        x = hidden.reshape(-1, hidden.shape[-1]).to(**f32)
        t = x.shape[0]
        x_norm = rms_norm(x, block.input_layernorm.weight.to(**f32), cfg.rms_norm_eps)

        def project(linear, heads):  # [T, d] -> [heads, T, d_k]
            y = x_norm @ linear.weight.to(**f32).T
            if linear.bias is not None:
                y = y + linear.bias.to(**f32)
            return y.view(t, heads, d_k).transpose(0, 1)

        q, k, v = project(attn.q_proj, n_heads), project(attn.k_proj, n_kv), project(attn.v_proj, n_kv)
        theta = float(rope_params["rope_theta"])
        q_rot, k_rot = rope(q, theta), rope(k, theta)
        group = n_heads // n_kv                      # query heads 0..group-1 share KV head 0, and so on
        k_shared, v_shared = k_rot.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
        scores = q_rot @ k_shared.transpose(-1, -2) / math.sqrt(d_k)
        future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        probs = scores.softmax(-1)
        context = probs @ v_shared
        output = context.transpose(0, 1).reshape(t, n_heads * d_k) @ attn.o_proj.weight.to(**f32).T
        if attn.o_proj.bias is not None:
            output = output + attn.o_proj.bias.to(**f32)
    return Steps(x, x_norm, q, k, v, q_rot, k_rot, scores, probs, context, output)


@dataclass
class Trace:
    """One forward pass, recorded: per layer its input, its attention probabilities and its attention output."""

    tokens: list[str]
    ids: torch.Tensor                  # [T]
    inputs: list[torch.Tensor]         # layer -> [T, d], the input hidden states of the layer
    attentions: torch.Tensor           # [L, H, T, T]
    block_outputs: list[torch.Tensor]  # layer -> [T, d], self_attn's output before the residual add
    layer_outputs: list[torch.Tensor]  # layer -> [T, d], the residual stream after the layer
    logits: torch.Tensor               # [T, V]


def trace(lm, text: str, *, max_tokens: int = MAX_TOKENS) -> Trace:
    """Run the model once in eager mode, recording every layer's input, attention and outputs with hooks (notebook 03)."""
    ids = _ids(lm, text, max_tokens)
    layers = _layers(lm.model)
    inputs, blocks, outs = {}, {}, {}
    handles = []

    def pre_hook(i):
        def fn(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            inputs[i] = h[0].detach().float().cpu()
        return fn

    def attn_hook(i):
        def fn(module, args, output):
            blocks[i] = output[0][0].detach().float().cpu()
        return fn

    def out_hook(i):
        def fn(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            outs[i] = h[0].detach().float().cpu()
        return fn

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
        handles.append(layer.self_attn.register_forward_hook(attn_hook(i)))
        handles.append(layer.register_forward_hook(out_hook(i)))
    try:
        with eager_attention(lm.model), torch.inference_mode():
            out = lm.model(ids, output_attentions=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    att = torch.stack([a[0] for a in out.attentions]).float().cpu()
    n = len(layers)
    return Trace(token_labels(lm, ids[0]), ids[0].cpu(), [inputs[i] for i in range(n)], att,
                 [blocks[i] for i in range(n)], [outs[i] for i in range(n)], out.logits[0].float().cpu())


def recompute(lm, text: str, layer: int) -> torch.Tensor:
    """Layer ``layer``'s attention probabilities ``[heads, T, T]``, rebuilt from its input and weights (notebook 03).

    The model runs once only to record the layer's *input* hidden states; the probabilities are then computed by
    :func:`attention_steps`, never read from the model. :func:`verify` compares them with the model's own.
    """
    layer = _check_layer(lm, layer)
    return attention_steps(lm, trace(lm, text).inputs[layer], layer).probs


def verify(lm, text: str, *, atol: float = 1e-5, rtol: float = 1e-4):
    """Recompute every layer and compare with the model: a DataFrame of max differences, one row a layer.

    Columns: ``probs_max_abs_diff``, ``output_max_abs_diff``, ``output_max_abs`` (the scale of the block output)
    and ``equal`` (both ``torch.allclose`` at ``atol``/``rtol``) (notebook 03).
    """
    import pandas as pd

    tr = trace(lm, text)
    rows = []
    for layer in range(len(tr.inputs)):
        s = attention_steps(lm, tr.inputs[layer], layer)
        own_p, own_o = tr.attentions[layer], tr.block_outputs[layer]
        rows.append({"layer": layer,
                     "probs_max_abs_diff": (s.probs - own_p).abs().max().item(),
                     "output_max_abs_diff": (s.output - own_o).abs().max().item(),
                     "output_max_abs": own_o.abs().max().item(),
                     "equal": bool(torch.allclose(s.probs, own_p, atol=atol, rtol=rtol)
                                   and torch.allclose(s.output, own_o, atol=atol, rtol=rtol))})
    return pd.DataFrame(rows).set_index("layer")


# ----------------------------------------------------------------------------------------------- head statistics
def entropy_bits(att: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each attention row, ``att[..., T, T] -> [..., T]`` (notebook 03)."""
    p = att.float().clamp_min(0)
    return -(p * torch.log2(p.clamp_min(1e-12))).sum(-1)


def head_stats(att: torch.Tensor, *, threshold: float = 0.5, broad: float = 0.7):
    """Per-head entropy and pattern scores, with a class for each head: a DataFrame of ``layers × heads`` rows.

    Scores are means over query positions ``i ≥ 2`` (where "previous" and "first" differ): ``prev = A[i, i-1]``,
    ``first = A[i, 0]``, ``diag = A[i, i]``, and ``norm_entropy`` = entropy / log2(i+1) (1 = uniform over the
    visible tokens). A head is ``previous-token``, ``first-token`` (an attention sink) or ``diagonal`` when that
    score is the largest and at least ``threshold``; else ``broad`` when ``norm_entropy ≥ broad``; else ``mixed``
    (notebook 03).
    """
    import pandas as pd

    if att.dim() != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(f"att has shape {tuple(att.shape)}: pass [layers, heads, T, T] as from attentions()")
    n_layers, n_heads, t, _ = att.shape
    if t < 3:
        raise ValueError(f"the text has {t} tokens: head classification needs at least 3")
    a = att.float()
    rows = torch.arange(2, t)
    prev = a[..., rows, rows - 1].mean(-1)
    first = a[..., rows, 0].mean(-1)
    diag = a[..., rows, rows].mean(-1)
    ent = entropy_bits(a)[..., rows]
    norm_ent = (ent / torch.log2(rows.float() + 1)).mean(-1)
    records = []
    for layer in range(n_layers):
        for head in range(n_heads):
            scores = {"previous-token": prev[layer, head].item(), "first-token": first[layer, head].item(),
                      "diagonal": diag[layer, head].item()}
            best = max(scores, key=scores.get)
            ne = norm_ent[layer, head].item()
            kind = best if scores[best] >= threshold else ("broad" if ne >= broad else "mixed")
            records.append({"layer": layer, "head": head, "entropy_bits": ent[layer, head].mean().item(),
                            "norm_entropy": ne, "prev": scores["previous-token"], "first": scores["first-token"],
                            "diag": scores["diagonal"], "kind": kind})
    return pd.DataFrame(records)


# ----------------------------------------------------------------------------------------------- across layers
def rollout(att: torch.Tensor, *, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): ``R_l = Â_l · R_{l-1}``, returned for every layer ``[L, T, T]``.

    ``Â_l = residual·I + (1-residual)·mean_heads(A_l)``, rows renormalised: the identity stands for the residual
    connection, which carries each token's own state past the block. ``R[l, i, j]`` is how much of input token
    ``j`` reaches position ``i`` after layer ``l``, if information only mixed along attention (notebook 03).
    """
    if att.dim() != 4:
        raise ValueError(f"att has shape {tuple(att.shape)}: pass [layers, heads, T, T] as from attentions()")
    if not 0 <= residual <= 1:
        raise ValueError(f"residual={residual} must be between 0 and 1 (0.5 in the paper)")
    t = att.shape[-1]
    eye = torch.eye(t)
    out, r = [], eye
    for a in att.float().mean(1):
        a_hat = residual * eye + (1 - residual) * a
        a_hat = a_hat / a_hat.sum(-1, keepdim=True)
        r = a_hat @ r
        out.append(r)
    return torch.stack(out)


@dataclass
class LogitLens:
    """The final norm and unembedding applied to the residual stream after each layer (notebook 03).

    Row 0 is the token embeddings, row ``l+1`` the stream after layer ``l``; the last row gives the model's logits.
    """

    tokens: list[str]
    top_ids: torch.Tensor        # [L+1, T]
    top_probs: torch.Tensor      # [L+1, T]
    top_tokens: list[list[str]]  # [L+1][T]
    last_probs: torch.Tensor     # [L+1, V] the full distribution at the last position
    row_labels: list[str] = field(default_factory=list)

    def rank(self, token_id: int) -> np.ndarray:
        """Rank (0 = top) of ``token_id`` at the last position, for each row."""
        p = self.last_probs
        return (p > p[:, token_id:token_id + 1]).sum(-1).numpy()

    def first_layer(self, token_id: int) -> int | None:
        """First layer after which ``token_id`` is the top guess at the last position (-1: already the embedding)."""
        hits = np.flatnonzero(self.rank(token_id) == 0)
        return int(hits[0]) - 1 if hits.size else None


def logit_lens(lm, text: str, *, max_tokens: int = MAX_TOKENS) -> LogitLens:
    """Decode every layer's residual stream with the model's own final norm and unembedding (notebook 03).

    transformers' last ``hidden_states`` entry already has the final norm applied, so the raw stream after each
    layer is recorded with hooks instead (:func:`trace`); the last row equals the model's logits.
    """
    tr = trace(lm, text, max_tokens=max_tokens)
    model = lm.model
    emb = model.get_input_embeddings().weight[tr.ids.to(model.get_input_embeddings().weight.device)]
    stream = torch.stack([emb.detach().float().cpu()] + tr.layer_outputs)       # [L+1, T, d]
    norm, head = model.model.norm, model.get_output_embeddings()
    with torch.inference_mode():
        x = stream.to(device=lm.device, dtype=lm.dtype)
        probs = head(norm(x)).float().softmax(-1).cpu()                          # [L+1, T, V]
    top_p, top_i = probs.max(-1)
    top_tokens = [[lm.tokenizer.decode([i]) for i in row] for row in top_i.tolist()]
    labels = ["embed"] + [str(i) for i in range(len(tr.layer_outputs))]
    return LogitLens(tr.tokens, top_i, top_p, top_tokens, probs[:, -1].clone(), labels)


# ----------------------------------------------------------------------------------------------- plots
def _visible(token: str) -> str:
    """A token's text as a plot label: whitespace-only tokens shown by their escape (e.g. '\\n', '␣')."""
    if token.strip():
        return token.replace("\n", "\\n").replace("\t", "\\t")
    return token.replace(" ", "␣").replace("\n", "\\n").replace("\t", "\\t") or "∅"


def _as_np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _cmap(name: str = "viridis", bad: str = "#eeeeee"):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=bad)  # bad: the masked future


def plot_head(weights, tokens, ax=None, *, title: str | None = None, query: int | None = None,
              cmap: str = "viridis", colorbar: bool = True, gamma: float | None = None):
    """One head's ``[T, T]`` attention map as a heatmap, token labels on both axes (notebook 03).

    Rows are queries (the token attending), columns keys (the token attended to); the masked future is grey.
    ``query`` frames that row. Colours run from 0 to the map's maximum, or, with ``gamma``, from 0 to 1 on a
    power scale (fixed, so maps can be compared, with weak weights still visible).
    """
    from matplotlib.colors import PowerNorm
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    w = _as_np(weights)
    t = w.shape[-1]
    if w.shape != (t, t) or len(tokens) != t:
        raise ValueError(f"weights {w.shape} and {len(tokens)} tokens do not match: pass one head [T, T] and T labels")
    if ax is None:
        size = min(12, max(4, 0.22 * t + 2))
        _, ax = plt.subplots(figsize=(size + 1, size))
    shown = np.where(np.triu(np.ones((t, t), bool), 1), np.nan, w)
    norm = PowerNorm(gamma, vmin=0, vmax=1) if gamma else None
    im = ax.imshow(shown, cmap=_cmap(cmap), norm=norm, interpolation="nearest",
                   **({} if gamma else {"vmin": 0, "vmax": max(float(np.nanmax(shown)), 1e-9)}))
    fs = 9 if t <= 24 else 7 if t <= 48 else 5
    ax.set_xticks(range(t), tokens, rotation=90, fontsize=fs)
    ax.set_yticks(range(t), tokens, fontsize=fs)
    ax.set_xlabel("key: the token attended to")
    ax.set_ylabel("query: the token attending")
    ax.set_title(title or "attention probabilities")
    if query is not None:
        ax.add_patch(Rectangle((-0.5, query - 0.5), query + 1, 1, fill=False, edgecolor="red", linewidth=2))
    if colorbar:
        label = f"probability (power scale, γ={gamma})" if gamma else "probability"
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    return ax


def plot_grid(att: torch.Tensor, ax=None, *, title: str | None = None, gamma: float = 0.5):
    """Every head of every layer as a small map in one mosaic: columns are layers, rows heads (notebook 03).

    Colours use a power scale (``gamma``) so that weak patterns stay visible next to the strong first-token sink.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    a = _as_np(att)
    if a.ndim != 4:
        raise ValueError(f"att has shape {a.shape}: pass [layers, heads, T, T] as from attentions()")
    n_layers, n_heads, t, _ = a.shape
    cell = t + 1
    mosaic = np.full((n_heads * cell - 1, n_layers * cell - 1), np.nan)
    future = np.triu(np.ones((t, t), bool), 1)
    for layer in range(n_layers):
        for head in range(n_heads):
            mosaic[head * cell:head * cell + t, layer * cell:layer * cell + t] = np.where(future, np.nan,
                                                                                        a[layer, head])
    if ax is None:
        _, ax = plt.subplots(figsize=(min(18, 0.5 * n_layers + 1.5), min(10, 0.5 * n_heads + 1.2)))
    cmap = _cmap("viridis", bad="white")
    im = ax.imshow(mosaic, cmap=cmap, norm=PowerNorm(gamma, vmin=0, vmax=1), interpolation="nearest")
    ax.set_xticks([l * cell + t / 2 - 0.5 for l in range(n_layers)], range(n_layers), fontsize=7)
    ax.set_yticks([h * cell + t / 2 - 0.5 for h in range(n_heads)], range(n_heads), fontsize=8)
    ax.set_xlabel("layer")
    ax.set_ylabel("head")
    ax.set_title(title or f"attention of every head ({t} tokens; each cell a [query × key] map)")
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label=f"probability (power scale, γ={gamma})")
    return ax


def plot_head_view(weights, tokens, ax=None, *, query: int | None = None, min_weight: float = 0.02,
                   title: str | None = None, color: str = "#1f77b4"):
    """A "head view": each token on the left joined to the tokens it attends to on the right (notebook 03).

    Line width and opacity follow the probability; weights below ``min_weight`` are not drawn. With ``query``,
    only that token's lines are drawn and its targets are labelled with their weight.
    """
    import matplotlib.pyplot as plt

    w = _as_np(weights)
    t = w.shape[-1]
    if w.shape != (t, t) or len(tokens) != t:
        raise ValueError(f"weights {w.shape} and {len(tokens)} tokens do not match: pass one head [T, T] and T labels")
    if query is not None and not 0 <= query < t:
        raise ValueError(f"query={query} is out of range: use 0..{t - 1}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, max(3, 0.28 * t + 1)))
    fs = 9 if t <= 24 else 7 if t <= 48 else 5
    queries = range(t) if query is None else [query]
    segments, colours, widths = [], [], []
    for i in queries:
        for j in range(i + 1):
            p = float(w[i, j])
            if p >= min_weight:
                segments.append([(0.0, i), (1.0, j)])
                colours.append((*__import__("matplotlib").colors.to_rgb(color), min(1.0, 0.15 + 0.85 * p)))
                widths.append(0.5 + 4 * p)
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths))
    for i, tok in enumerate(tokens):
        bold = "bold" if i == query else "normal"
        ax.text(-0.02, i, tok, ha="right", va="center", fontsize=fs, fontweight=bold,
                color="red" if i == query else "black")
        label = tok if query is None or w[query, i] < min_weight or i > query else f"{tok}  {w[query, i]:.2f}"
        ax.text(1.02, i, label, ha="left", va="center", fontsize=fs)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(t - 0.5, -0.5)
    ax.set_xticks([0, 1], ["query (attending)", "key (attended to)"])
    ax.set_yticks([])
    ax.set_ylabel("position")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "head view")
    return ax


def plot_head_stats(stats, ax=None, *, title: str | None = None):
    """Layers × heads heatmap of the normalised entropy, each cell marked with its class letter (notebook 03).

    P previous-token, F first-token (sink), D diagonal, B broad, · mixed.
    """
    import matplotlib.pyplot as plt

    n_layers, n_heads = stats["layer"].max() + 1, stats["head"].max() + 1
    grid = np.zeros((n_heads, n_layers))
    letters = {"previous-token": "P", "first-token": "F", "diagonal": "D", "broad": "B", "mixed": "·"}
    if ax is None:
        _, ax = plt.subplots(figsize=(min(18, 0.45 * n_layers + 2), 0.45 * n_heads + 1.5))
    for row in stats.itertuples():
        grid[row.head, row.layer] = row.norm_entropy
    im = ax.imshow(grid, cmap="magma", vmin=0, vmax=1, aspect="auto")
    for row in stats.itertuples():
        ax.text(row.layer, row.head, letters[row.kind], ha="center", va="center", fontsize=8,
                color="white" if row.norm_entropy < 0.6 else "black")
    ax.set_xticks(range(n_layers), range(n_layers), fontsize=7)
    ax.set_yticks(range(n_heads), range(n_heads))
    ax.set_xlabel("layer")
    ax.set_ylabel("head")
    counts = stats["kind"].value_counts()
    ax.set_title(title or "head entropy (1 = uniform) and pattern: " + ", ".join(
        f"{letters[k]} {k} {counts.get(k, 0)}" for k in HEAD_CLASSES))
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label="entropy / log2(visible tokens)")
    return ax


def plot_rollout(roll: torch.Tensor, tokens, ax=None, *, query: int = -1, title: str | None = None):
    """How much each input token reaches position ``query`` after each layer, per :func:`rollout` (notebook 03)."""
    import matplotlib.pyplot as plt

    r = _as_np(roll)
    n_layers, t, _ = r.shape
    q = query % t
    if ax is None:
        _, ax = plt.subplots(figsize=(min(14, 0.45 * t + 3), 6))
    im = ax.imshow(r[:, q, :q + 1], cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(q + 1), tokens[:q + 1], rotation=90, fontsize=8)
    ax.set_yticks(range(0, n_layers, 2), range(0, n_layers, 2), fontsize=8)
    ax.set_xlabel("input token")
    ax.set_ylabel("after layer")
    ax.set_title(title or f"attention rollout into {tokens[q]!r} (position {q})")
    ax.figure.colorbar(im, ax=ax, label="rolled-out share")
    return ax


def plot_logit_lens(lens: LogitLens, ax=None, *, rows=None, title: str | None = None):
    """The logit lens as a heatmap: top guess (text) and its probability (colour) by layer and position (notebook 03)."""
    import matplotlib.pyplot as plt

    rows = list(range(len(lens.row_labels))) if rows is None else list(rows)
    p = lens.top_probs[rows].numpy()
    t = p.shape[1]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(18, 1.3 * t + 2), 0.32 * len(rows) + 1.5))
    im = ax.imshow(p, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r, row in enumerate(rows):
        for c in range(t):
            ax.text(c, r, _visible(lens.top_tokens[row][c])[:10], ha="center", va="center",
                    fontsize=7, color="white" if p[r, c] > 0.6 else "black")
    ax.set_xticks(range(t), [f"{tok}\n→" for tok in lens.tokens], fontsize=8)
    ax.set_yticks(range(len(rows)), [lens.row_labels[r] for r in rows], fontsize=7)
    ax.set_xlabel("position (the token read; each cell guesses the next one)")
    ax.set_ylabel("residual stream after layer")
    ax.set_title(title or "logit lens: top next-token guess by layer")
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="probability of the top guess")
    return ax


# ----------------------------------------------------------------------------------------------- the explorer
class Explorer:
    """An ipywidgets panel over one model's attention (notebook 03).

    Controls are attributes: ``text`` (submit with Enter), ``layer`` and ``head`` sliders, ``average`` (over heads),
    ``token`` (the query to highlight; -1 = all), ``view`` ("heatmap" or "head view"); the map goes to ``output``
    as a PNG, messages to ``status``. Attentions are computed once per text (``n_computed`` counts forward passes);
    moving a control only redraws, and ``last_redraw_s`` holds the time of the latest redraw.
    """

    def __init__(self, lm, text: str = "The cat sat on the mat because it was tired.", *,
                 max_tokens: int = EXPLORER_MAX_TOKENS, dpi: int = 80):
        import ipywidgets as w

        self.lm, self.max_tokens, self.dpi = lm, max_tokens, dpi
        cfg = lm.model.config
        self.n_computed, self.last_redraw_s, self.shown, self.title = 0, 0.0, None, ""
        self.tokens: list[str] = []
        self.att: torch.Tensor | None = None
        self._cache: dict[str, tuple[list[str], torch.Tensor, str]] = {}
        self._frames: dict = {}  # (text's tensor id, view) -> (figure, animated artists, background)
        self.text = w.Text(value=text, description="text", continuous_update=False,
                           layout=w.Layout(width="95%"), placeholder="type a text and press Enter")
        self.layer = w.IntSlider(0, min=0, max=cfg.num_hidden_layers - 1, description="layer",
                                 continuous_update=True)
        self.head = w.IntSlider(0, min=0, max=cfg.num_attention_heads - 1, description="head",
                                continuous_update=True)
        self.average = w.Checkbox(False, description="average over heads")
        self.token = w.Dropdown(options=[("all tokens", -1)], value=-1, description="query")
        self.view = w.ToggleButtons(options=["heatmap", "head view"], value="heatmap", description="view")
        self.status = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([self.text, w.HBox([self.layer, self.head, self.average]),
                              w.HBox([self.token, self.view]), self.status, self.output])
        self.text.observe(lambda _: self.compute(), names="value")
        for control in (self.layer, self.head, self.average, self.token, self.view):
            control.observe(lambda _: self.redraw(), names="value")
        self.compute()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _note(self, message: str, error: bool = False) -> None:
        import html

        colour = "#b00020" if error else "#555555"
        self.status.value = f'<span style="color:{colour}">{html.escape(message)}</span>' if message else ""

    def compute(self) -> None:
        """Tokenise the text (truncating past ``max_tokens``, with a note), run the model once, then redraw."""
        text = self.text.value
        try:
            if text not in self._cache:
                if not text.strip():
                    raise ValueError("the text is empty: type a text and press Enter")
                ids = self.lm.encode(text)[0]
                note = ""
                if len(ids) > self.max_tokens:
                    note = (f"The text has {len(ids)} tokens: showing the first {self.max_tokens} "
                            f"(max_tokens={self.max_tokens}).")
                    ids = ids[:self.max_tokens]
                tokens, att = _attentions_of_ids(self.lm, ids[None])
                if len(self._cache) >= 8:  # keep the 8 latest texts (a 64-token text takes 4.4 MB)
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = (tokens, att, note)
                self.n_computed += 1
            self.tokens, self.att, note = self._cache[text]
        except ValueError as exc:
            self._note(str(exc), error=True)
            return
        options = [("all tokens", -1)] + [(f"{i}: {tok!r}", i) for i, tok in enumerate(self.tokens)]
        with self.token.hold_trait_notifications():
            keep = self.token.value if self.token.value < len(self.tokens) else -1
            self.token.options = options
            self.token.value = keep
        self._note(note or f"{len(self.tokens)} tokens; moving a control only redraws.")
        self.redraw()

    def current(self) -> torch.Tensor:
        """The ``[T, T]`` map the controls select: one head, or the mean over heads."""
        a = self.att[self.layer.value]
        return a.mean(0) if self.average.value else a[self.head.value]

    def _figure(self):
        """The figure for the current text and view, drawn once; a redraw only blits the artists that change.

        Text is what costs most in matplotlib (tick labels, colour bar), so the static frame is rendered once
        per text and view and kept as a background; each redraw restores it, draws the map (or the lines) and
        the title over it, and encodes the pixels. Colours are on a fixed 0..1 power scale, so the colour bar
        never changes.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure

        key = (id(self.att), self.view.value)
        if key in self._frames:
            self._fig, self._animated, self._background = self._frames[key]
            return self._fig
        if self._frames and next(iter(self._frames))[0] != key[0]:
            self._frames.clear()  # a new text: the old frames are stale
        t = len(self.tokens)
        if self.view.value == "heatmap":
            size = min(9.0, max(4.5, 0.16 * t + 2.5))
            fig = Figure(figsize=(size + 1, size), dpi=self.dpi)
            ax = plot_head(np.tril(np.ones((t, t))), self.tokens, fig.add_subplot(), title=" ", query=0,
                           gamma=GAMMA)
            self._animated = [ax.images[0], ax.patches[0], ax.title]
        else:
            fig = Figure(figsize=(6, max(3.0, 0.2 * t + 1)), dpi=self.dpi)
            ax = plot_head_view(np.zeros((t, t)), self.tokens, fig.add_subplot(), title=" ")
            self._animated = [ax.add_collection(LineCollection([])), ax.title]
        canvas = FigureCanvasAgg(fig)
        fig.tight_layout()  # once per text and view: it costs more than a redraw
        for artist in self._animated:
            artist.set_animated(True)
        canvas.draw()
        self._background = canvas.copy_from_bbox(fig.bbox)
        self._fig = fig
        self._frames[key] = (fig, self._animated, self._background)
        return fig

    def render(self) -> bytes:
        """The current view as PNG bytes (a matplotlib figure outside pyplot, so nothing else is displayed)."""
        from PIL import Image as PILImage

        t = len(self.tokens)
        query = None if self.token.value < 0 else self.token.value
        which = "mean of heads" if self.average.value else f"head {self.head.value}"
        self.title = f"layer {self.layer.value}, {which}" + ("" if query is None else
                                                             f", query {query}: {self.tokens[query]!r}")
        self.shown = self.current()
        fig = self._figure()
        ax = fig.axes[0]
        fig.canvas.restore_region(self._background)
        ax.title.set_text(self.title)
        w = self.shown.numpy()
        extra = []
        if self.view.value == "heatmap":
            image, frame, _ = self._animated
            image.set_data(np.where(np.triu(np.ones((t, t), bool), 1), np.nan, w))
            frame.set_visible(query is not None)
            frame.set_y((query or 0) - 0.5)
            frame.set_width((query or 0) + 1)
        else:
            lines = self._animated[0]
            queries = range(t) if query is None else [query]
            pairs = [(i, j) for i in queries for j in range(i + 1) if w[i, j] >= HEAD_VIEW_MIN]
            lines.set_segments([[(0.0, i), (1.0, j)] for i, j in pairs])
            lines.set_color([(0.12, 0.47, 0.71, min(1.0, 0.15 + 0.85 * w[i, j])) for i, j in pairs])
            lines.set_linewidth([0.5 + 4 * w[i, j] for i, j in pairs])
            if query is not None:
                fs = 9 if t <= 24 else 7 if t <= 48 else 5
                extra.append(ax.text(-0.02, query, self.tokens[query], ha="right", va="center", fontsize=fs,
                                     color="red", fontweight="bold", animated=True,
                                     bbox=dict(facecolor="white", edgecolor="none", pad=0.5)))
                extra += [ax.text(1.6, j, f"{w[query, j]:.2f}", ha="right", va="center", fontsize=fs,
                                  color="red", animated=True) for _, j in pairs]
        for artist in self._animated + extra:
            ax.draw_artist(artist)
        for artist in extra:
            artist.remove()
        buf = io.BytesIO()
        rgba = fig.canvas.buffer_rgba()
        size = (int(fig.bbox.width), int(fig.bbox.height))
        PILImage.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB").save(buf, format="png",
                                                                                         compress_level=1)
        return buf.getvalue()

    def redraw(self) -> None:
        """Draw the current map into ``output`` (replacing the previous one); no model call."""
        from IPython.display import Image

        if self.att is None:
            return
        start = time.perf_counter()
        self.head.disabled = self.average.value
        png = self.render()
        self.output.outputs = ()
        self.output.append_display_data(Image(data=png, format="png"))
        self.last_redraw_s = time.perf_counter() - start


def explorer(lm, text: str = "The cat sat on the mat because it was tired.", **kw) -> Explorer:
    """The interactive attention explorer (notebook 03); display the returned object."""
    return Explorer(lm, text, **kw)
