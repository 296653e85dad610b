"""The static acceptance rubric (spec section 7), one check id per rule.

====================  ======================================================================
check id              fails when
====================  ======================================================================
json                  the file is not UTF-8 JSON (or repeats a key)
schema                it does not match artifact.schema.json
name                  ``safe_stem(name)`` is not the file's stem (or the name is unsafe)
kernel-type           triton: no ``@triton.jit``/``@gluon.jit`` def; cuda: no ``__global__``
no-host-code          source_code holds main/__main__/print/launches/allocations (Python) or
                      main/<<<>>>/cudaLaunchKernel*/cudaMalloc*/TORCH_CHECK/Tensor/std::cout (CUDA)
cuda-headers          CUDA uses fp16/bf16/fp8/fp6/fp4 types without a header providing them
triton-imports        Triton imports anything but triton.*, __future__, math, typing, or torch
                      without using it
invocation-parses     triton: not valid Python; cuda: no ``#include "<unit>.cu"`` or no ``main``
model-header          a ``MODEL_NAME: <id>`` header line without any https://huggingface.co/ URL
                      (a local config.json, or a ``defaults:ARCH`` id whose header names its
                      bundled ``vkc:modelcfg/defaults/`` file, has no hub page)
invocation-launch     the example never launches (``K[grid](``/``.run(``; ``<<<``/cudaLaunchKernelEx)
                      or never refers to any of the source's @jit / __global__ functions
====================  ======================================================================

A failed ``json`` or ``schema`` check ends the artifact's checks; checks that need a
parse that failed (or that do not apply to the kernel type) are not reported.
"""
from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vkc.errors import KernelNameError
from vkc.naming import safe_stem
from vkc.verify import pyscan
from vkc.verify.cscan import includes, line_of, strip_c
from vkc.verify.result import CheckResult
from vkc.write.schema import loads_artifact, schema_error

CHECK_IDS = ("json", "schema", "name", "kernel-type", "no-host-code", "cuda-headers", "triton-imports",
             "invocation-parses", "model-header", "invocation-launch")

_CUDA_HOST = [
    (re.compile(r"\bmain\s*\("), "main()"),
    (re.compile(r"<<<"), "<<<...>>> launch"),
    (re.compile(r"\bcudaLaunch\w*|\bhipLaunchKernelGGL\b"), "runtime kernel launch"),
    (re.compile(r"\bcudaMalloc\w*"), "cudaMalloc"),
    (re.compile(r"\bTORCH_CHECK\w*"), "TORCH_CHECK"),
    (re.compile(r"\b(?:torch|at)\s*::\s*Tensor\b"), "torch/at::Tensor"),
    (re.compile(r"\bstd\s*::\s*(?:cout|cerr)\b"), "std::cout"),
]

# Headers known to provide each family (directly or by including the CUDA header):
# cuda_bf16.h includes cuda_fp16.h; cuda_fp8.h both; cuda_fp6.h fp8; cuda_fp4.h fp6;
# mma.h (crt/mma.h) fp16+bf16; torch's Half.h/BFloat16.h include the CUDA headers under
# nvcc; CUTLASS's half/bfloat16 headers and cub's util_type.cuh (any cub/ header) too.
_TORCH_ALL = ("torch/all.h", "torch/extension.h", "ATen/ATen.h", "ATen/cuda/CUDAContext.h")
_FP16_HDRS = ("cuda_fp16.h", "cuda_bf16.h", "cuda_fp8.h", "cuda_fp6.h", "cuda_fp4.h", "mma.h",
              "torch/headeronly/util/Half.h", "torch/headeronly/util/BFloat16.h", "c10/util/Half.h",
              "c10/util/BFloat16.h", "cutlass/numeric_types.h", "cutlass/half.h", *_TORCH_ALL)
_BF16_HDRS = ("cuda_bf16.h", "cuda_fp8.h", "cuda_fp6.h", "cuda_fp4.h", "mma.h",
              "torch/headeronly/util/BFloat16.h", "c10/util/BFloat16.h", "cutlass/numeric_types.h",
              "cutlass/bfloat16.h", *_TORCH_ALL)
_HEADER_FAMILIES = [
    # (needed header, usage pattern, providers, provider prefixes)
    ("cuda_fp16.h", re.compile(
        r"\b(?:__half2?|__half2?_raw|__float2half\w*|__half2float|__floats2half2_rn|__float22half2_rn"
        r"|__half22float2|__low2half\w*|__high2half\w*|__halves2half2|__half2half2"
        r"|__h(?:add|sub|mul|div|fma|neg|max|min|abs)2?(?:_sat|_rn)?|h2?(?:exp|rsqrt|sqrt|log)"
        r"|half2?(?=\s*[*&>,)]|\s+[A-Za-z_]))\b"), _FP16_HDRS, ("cub/",)),
    ("cuda_bf16.h", re.compile(
        r"\b(?:__nv_bfloat162?|nv_bfloat162?|__nv_bfloat162?_raw|__float2bfloat16\w*|__bfloat162float"
        r"|__floats2bfloat162_rn|__float22bfloat162_rn|__bfloat1622float2|__low2bfloat16|__high2bfloat16"
        r"|__bfloat162bfloat162|__halves2bfloat162)\b"), _BF16_HDRS, ("cub/",)),
    ("cuda_fp8.h", re.compile(r"\b(?:__nv_fp8\w*|__nv_cvt_\w*fp8\w*|__NV_E4M3|__NV_E5M2|__NV_SATFINITE)\b"),
     ("cuda_fp8.h", "cuda_fp6.h", "cuda_fp4.h"), ()),
    ("cuda_fp6.h", re.compile(r"\b(?:__nv_fp6\w*|__nv_cvt_\w*fp6\w*|__NV_E2M3|__NV_E3M2)\b"),
     ("cuda_fp6.h", "cuda_fp4.h"), ()),
    ("cuda_fp4.h", re.compile(r"\b(?:__nv_fp4\w*|__nv_cvt_\w*fp4\w*|__NV_E2M1)\b"), ("cuda_fp4.h",), ()),
]

# kernel attributes that take arguments and sit between __global__ and the kernel's name
_LAUNCH_BOUNDS = re.compile(r"\b(?:__launch_bounds__|__cluster_dims__|__maxnreg__|__block_size__)\s*"
                            r"\((?:[^()]|\([^()]*\))*\)")
_GLOBAL = re.compile(r"\b__global__\b")
_STOP = re.compile(r"[;{}()]")
_MODEL_LINE = re.compile(r"^\s*(?:#+|//+|/\*+|\*+)?\s*MODEL_NAME\s*[:=]\s*(.*?)\s*(?:\*/)?\s*$")
_NO_MODEL = {"", "none", "null", "-", "n/a", "(none)"}
_HEADER_LINES = 80
_HF_URL = "https://huggingface.co/"


def check_artifact(path: str | os.PathLike[str]) -> list[CheckResult]:
    """Run the static rubric on one artifact file."""
    shown = os.fspath(path)
    res: list[CheckResult] = []

    def add(check: str, reason: str | None, **details: Any) -> None:
        res.append(CheckResult(shown, check, reason is None, reason or "", details))

    try:
        obj = loads_artifact(Path(shown).read_bytes())
    except OSError as exc:
        add("json", f"cannot read the file ({exc.strerror})")
        return res
    except ValueError as exc:
        add("json", f"not valid JSON: {exc}")
        return res
    add("json", None)
    err = schema_error(obj)
    add("schema", None if err is None else f"does not match the artifact schema: {err}")
    if err:
        return res

    name: str = obj["name"]
    kt: str = obj["kernel"]["kernel_type"]
    src: str = obj["kernel"]["source_code"]
    inv: str = obj["kernel"]["invocation_example"]
    add("name", _name_reason(name, Path(shown).name))
    if kt == "triton":
        _triton_checks(src, inv, add)
    else:
        _cuda_checks(src, inv, safe_stem_or_none(name), add)
    add("model-header", _model_header_reason(inv))
    order = {c: i for i, c in enumerate(CHECK_IDS)}
    return sorted(res, key=lambda r: order[r.check])


def safe_stem_or_none(name: str) -> str | None:
    try:
        return safe_stem(name)
    except KernelNameError:
        return None


def _name_reason(name: str, file_name: str) -> str | None:
    try:
        stem = safe_stem(name)
    except KernelNameError as exc:
        return f"name is not a safe kernel name: {exc.message}"
    if file_name != f"{stem}.json":
        return f"name {name!r} maps to {stem}.json, but the file is {file_name}"
    return None


def _parse(code: str) -> tuple[ast.Module | None, str]:
    try:
        return ast.parse(code), ""
    except SyntaxError as exc:
        return None, f"SyntaxError at line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. NUL bytes
        return None, str(exc)
    except (MemoryError, RecursionError):  # nested too deeply for the parser
        return None, "nested too deeply to parse"


def _summary(prefix: str, findings: list[str]) -> str:
    more = f" (+{len(findings) - 3} more)" if len(findings) > 3 else ""
    return f"{prefix}: {'; '.join(findings[:3])}{more}"


def _triton_checks(src: str, inv: str, add: Callable[..., None]) -> None:
    tree, err = _parse(src)
    jitted: list[str] = []
    if tree is None:
        cuda_hint = " (it looks like CUDA: has __global__)" if "__global__" in src else ""
        add("kernel-type", f"kernel_type is triton but source_code is not Python{cuda_hint}: {err}")
    else:
        jitted = pyscan.jit_functions(tree)
        add("kernel-type", None if jitted else "kernel_type is triton but no def is decorated with "
            "@triton.jit/@gluon.jit", kernels=jitted)
        host = pyscan.host_code_findings(tree)
        add("no-host-code", _summary("source_code has host code", host) if host else None)
        bad = pyscan.import_findings(tree)
        add("triton-imports", _summary("imports beyond triton/tl (+torch when used)", bad) if bad else None)
    inv_tree, err = _parse(inv)
    add("invocation-parses", None if inv_tree is not None else f"invocation_example is not valid Python: {err}")
    if inv_tree is not None:
        add("invocation-launch", _launch_reason(pyscan.launches(inv_tree), "K[grid](...) or K.run(...)",
                                                jitted if tree is not None else [], pyscan.referenced(inv_tree)))


def _cuda_checks(src: str, inv: str, stem: str | None, add: Callable[..., None]) -> None:
    code = strip_c(src)
    add("kernel-type", None if re.search(r"\b__global__\b", code)
        else "kernel_type is cuda but source_code defines no __global__ function")
    host = [f"line {line_of(code, m.start())}: {what}"
            for pat, what in _CUDA_HOST for m in [pat.search(code)] if m]
    add("no-host-code", _summary("source_code has host code", sorted(host, key=_line_key)) if host else None)
    add("cuda-headers", _headers_reason(code, [h for _, h in includes(src)]))

    inv_code = strip_c(inv)
    units = [h for form, h in includes(inv) if form == '"' and h.endswith((".cu", ".cuh"))]
    missing = []
    if not units:
        missing.append(f'an #include of the kernel unit (e.g. "{stem or "<kernel>"}.cu")')
    if not re.search(r"\bint\s+main\s*\(", inv_code):
        missing.append("an int main(...)")
    add("invocation-parses", f"invocation_example lacks {' and '.join(missing)}" if missing else None)
    launched = re.search(r"<<<|\bcudaLaunchKernel(?:Ex(?:C)?)?\b", inv_code) is not None
    add("invocation-launch", _launch_reason(launched, "<<<...>>> or cudaLaunchKernelEx", global_names(code),
                                            set(re.findall(r"[A-Za-z_]\w*", strip_c(inv)))))


def global_names(code: str, *, in_order: bool = False) -> list[str]:
    """Names of the ``__global__`` functions in comment-stripped CUDA code: sorted and
    unique, or as they appear with ``in_order``."""
    found = _global_names(_LAUNCH_BOUNDS.sub(" ", code) if "__" in code else code)
    return found if in_order else sorted(set(found))


def _global_names(code: str) -> list[str]:
    """What ``\b__global__\b[^;{}()]*?\b([A-Za-z_]\\w*)\\s*\\(`` finds, in linear time (that
    regex retried the whole statement for every ``__global__`` in it): the name is the word
    right before the ``(`` that ends the statement fragment after ``__global__``."""
    found: list[str] = []
    consumed = 0                    # matches may not overlap
    stop: re.Match[str] | None = None
    for m in _GLOBAL.finditer(code):
        if m.start() < consumed:
            continue
        if stop is None or stop.start() < m.end():
            stop = _STOP.search(code, m.end())
            if stop is None:
                break
        if stop.group(0) != "(":
            continue
        end = stop.start()
        while end > m.end() and code[end - 1].isspace():
            end -= 1
        start = end
        while start > m.end() and (code[start - 1].isalnum() or code[start - 1] == "_"):
            start -= 1
        word = code[start:end]
        if word and (word[0].isalpha() or word[0] == "_") and word[0].isascii() and \
                (start == 0 or not (code[start - 1].isalnum() or code[start - 1] == "_")):
            found.append(word)
            consumed = stop.end()
    return found


def _launch_reason(launched: bool, forms: str, kernels: list[str], referenced: set[str]) -> str | None:
    if not launched:
        return f"invocation_example never launches a kernel (no {forms})"
    if kernels and not set(kernels) & referenced:
        return f"invocation_example launches, but never refers to the kernel ({', '.join(kernels)})"
    return None


def _line_key(finding: str) -> int:
    return int(finding.split(":", 1)[0].split()[1])


def _headers_reason(code: str, hdrs: list[str]) -> str | None:
    missing = []
    for need, use, providers, prefixes in _HEADER_FAMILIES:
        m = use.search(code)
        if m and not any(h in providers or h.startswith(prefixes or ("\0",)) for h in hdrs):
            missing.append(f"uses {m.group(0)} (line {line_of(code, m.start())}) without <{need}>")
    return "; ".join(missing) if missing else None


def model_name(invocation: str) -> str | None:
    """The model named by a ``MODEL_NAME:`` line near the top, or None ("none"/absent)."""
    for line in invocation.splitlines()[:_HEADER_LINES]:
        m = _MODEL_LINE.match(line)
        if m:
            value = m.group(1).strip()
            return None if value.lower() in _NO_MODEL else value
    return None


def _local_config(model: str) -> bool:
    """A model given as a local config.json path (it has no hub page to link to)."""
    return model.endswith(".json") or model.startswith(("/", "./", "../", "~"))


def _bundled_defaults(model: str, inv: str) -> bool:
    """A ``defaults:ARCH`` id: vkc's bundled config class defaults (no checkpoint, so no hub page),
    whose header names the bundled file as its config source."""
    return model.startswith("defaults:") and "vkc:modelcfg/defaults/" in inv


def _model_header_reason(inv: str) -> str | None:
    model = model_name(inv)
    if model is None or _HF_URL in inv or _local_config(model) or _bundled_defaults(model, inv):
        return None
    return f"header names model {model} but gives no {_HF_URL} URL"
