"""Fidelity stage: ``vkc fidelity DIR`` compares each extracted kernel's compiled IR
(Triton TTIR / CUDA PTX) with the original kernel's compiled from the vLLM tree."""
from vkc.fidelity.fidelity import format_fidelity, run_fidelity

__all__ = ["format_fidelity", "run_fidelity"]
