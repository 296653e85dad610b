"""Loaded (through PYTHONPATH) only by the compile workers of test_verify_many: Triton's
compile of the entry ``segv_compile`` kills the process and of ``hang_compile`` never
returns, as a crashing or hanging compiler would.  (The artifacts themselves can no longer
do that at import: verify --compile refuses module-level code.)"""
import importlib.abc
import importlib.util
import os
import signal
import sys
import time

TARGET = "vkc.verify.triton_compile"


def _patch(module):
    compile_quiet = module._compile_quiet

    def faulty(triton, ast_src, target, spec):
        if spec.get("entry") == "segv_compile":
            os.kill(os.getpid(), signal.SIGSEGV)
        if spec.get("entry") == "hang_compile":
            time.sleep(600)
        return compile_quiet(triton, ast_src, target, spec)

    module._compile_quiet = faulty


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _PatchOnImport())
