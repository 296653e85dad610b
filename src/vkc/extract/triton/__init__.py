"""Triton extractor.  Entry: :func:`extract_triton`; ground truth: :func:`check_standalone`."""
from vkc.extract.triton.extractor import extract_triton
from vkc.extract.triton.standalone import check_standalone, check_standalone_many

__all__ = ["check_standalone", "check_standalone_many", "extract_triton"]
