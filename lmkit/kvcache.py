"""The KV-cache keyword's first home, kept so that ``from lmkit.kvcache import with_cache`` still works (notebooks 08
and 14). The code lives in :mod:`lmkit.transformers_compat`."""
from lmkit.transformers_compat import NEW, OLD, cache_arg, returned_cache, with_cache

__all__ = ["cache_arg", "with_cache", "returned_cache", "NEW", "OLD"]
