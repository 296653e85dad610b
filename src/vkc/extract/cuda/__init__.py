"""CUDA extractor.  Entry: :func:`extract_cuda`."""
from vkc.extract.cuda.extract import extract_cuda

__all__ = ["extract_cuda"]
