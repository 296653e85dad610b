"""vkc — the vLLM Kernel Collector."""
__version__ = "0.1.0"
