"""The C++ front end shared by the CUDA index, extractor and invoker (a leaf: imports no other stage).

* :mod:`vkc.cxx.pp`: the partial preprocessor (build-configuration macros of a CUDA build);
* :mod:`vkc.cxx.ts`: tree-sitter-cuda parser helpers;
* :mod:`vkc.cxx.model`: the per-file model of a csrc file (kernels, launch sites);
* :mod:`vkc.cxx.text`: small text helpers over C++ source.
"""
