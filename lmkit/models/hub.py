"""Where a named model loads from: a local folder, the local Hugging Face cache, or the hub, which is probed once
and never reached when ``HF_HUB_OFFLINE`` is set (notebook 00)."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


from lmkit import checks
from lmkit.models.lm import DEFAULT_HUB_ID, LoadError


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
