"""Stage 1: the vLLM source tree.  Entry: :func:`resolve_source`."""
from vkc.source.fetch import DEFAULT_VERSION, KNOWN_SHA256, cache_dir, resolve_source

__all__ = ["DEFAULT_VERSION", "KNOWN_SHA256", "cache_dir", "resolve_source"]
