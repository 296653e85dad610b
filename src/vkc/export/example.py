"""A Triton invocation example with a reference, read statically (``ast`` only, nothing executed).

The example's interface, as :mod:`vkc.invoke.triton` renders it: module-level literals
``KERNEL_FILE``, ``ENTRY``, ``CONFIGS`` (FULL/SMALL launches: buffers with init specs, args
as views of buffers), ``REFERENCE_OUTPUTS`` (kernel param, element of the reference's result
or None, poisoned?, ``{dtype: (atol, rtol)}``), functions ``build(name)``,
``make_launch(cfg, args, constexprs)`` and ``reference(a, c)``, and the header lines
``# reference: <source> <file>:<line> ...`` and ``# tolerance:`` + indented lines.

Artifacts are untrusted data: literals are read with ``ast.literal_eval``; file names go
through :func:`vkc.verify.untrusted.artifact_file_name`; the kernel source must pass
:func:`vkc.verify.untrusted.triton_module_findings` before any exporter writes a file that
imports it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from vkc.errors import KernelNameError
from vkc.naming import safe_stem
from vkc.verify.untrusted import artifact_file_name, triton_module_findings

__all__ = ["RESERVED_FILES", "Example", "ExampleSkip", "read_example"]

# files the exporters write beside the kernel (the example's KERNEL_FILE may not be one of them)
RESERVED_FILES = ("reference.py", "model_new.py", "vkc_example.py", "main.py", "kernel.py", "vkc_task.py")
_LITERALS = ("KERNEL_FILE", "ENTRY", "CONFIGS", "REFERENCE_OUTPUTS", "KERNEL_NAME", "MODEL_NAME", "WORKLOAD")
_INTERFACE = ("build", "make_launch", "reference")


class ExampleSkip(Exception):
    """This artifact is not exported (the message is the reason, one line)."""


@dataclass(frozen=True)
class Example:
    name: str                     # the artifact's kernel name (checked: safe_stem accepts it)
    stem: str                     # safe_stem(name)
    kernel_file: str              # checked plain *.py file name
    entry: str
    configs: dict[str, Any]
    outputs: tuple[tuple[str, Any, bool, dict[str, tuple[float, float]]], ...]
    model: str | None
    workload: str | None
    reference_source: str | None  # test-reference | forward_native | ir-native ... (header)
    reference_origin: str | None  # the rest of the header's reference line (file:line (function))
    tolerance_lines: tuple[str, ...] = ()
    header: tuple[str, ...] = field(default_factory=tuple)
    code: str = ""                # the example's text (written as is; never run by vkc)
    source_code: str = ""         # the kernel module's text
    tree: ast.Module | None = None

    def params(self, config: str) -> list[str]:
        return [p for p, _spec in self.configs[config]["args"]]


def _literals(tree: ast.Module) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in _LITERALS:
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                pass
    return out


def _header(code: str) -> list[str]:
    lines = []
    for ln in code.splitlines():
        if not ln.startswith("#"):
            break
        lines.append(ln[1:].strip() if not ln.startswith("#   ") else "  " + ln[4:].rstrip())
    return lines


def _tolerances(header: list[str]) -> tuple[str, ...]:
    out, inside = [], False
    for ln in header:
        if ln.startswith("tolerance:"):
            inside = True
            rest = ln.split(":", 1)[1].strip()
            if rest:
                out.append(rest)
        elif inside and ln.startswith("  "):
            out.append(ln.strip())
        else:
            inside = False
    return tuple(out)


def _check_outputs(value: Any, params: list[str]) -> tuple[tuple[str, Any, bool, dict[str, tuple[float, float]]], ...]:
    if not isinstance(value, list) or not value:
        raise ExampleSkip("REFERENCE_OUTPUTS is not a non-empty list literal")
    out = []
    for item in value:
        if not (isinstance(item, tuple) and len(item) == 4 and isinstance(item[0], str) and item[0] in params
                and (item[1] is None or isinstance(item[1], (int, str))) and isinstance(item[2], bool)
                and isinstance(item[3], dict)):
            raise ExampleSkip(f"REFERENCE_OUTPUTS entry {str(item)[:80]} is not (param, index, poisoned, tolerances)")
        tols: dict[str, tuple[float, float]] = {}
        for dt, pair in item[3].items():
            if not (isinstance(dt, str) and isinstance(pair, tuple) and len(pair) == 2
                    and all(isinstance(x, (int, float)) for x in pair)):
                raise ExampleSkip(f"tolerance {str(pair)[:40]} of {item[0]} is not (atol, rtol)")
            tols[dt] = (float(pair[0]), float(pair[1]))
        out.append((item[0], item[1], item[2], tols))
    return tuple(out)


def _check_configs(configs: Any) -> dict[str, Any]:
    if not isinstance(configs, dict) or "SMALL" not in configs:
        raise ExampleSkip("CONFIGS is not a literal with a SMALL configuration")
    for cname, cfg in configs.items():
        if not (isinstance(cname, str) and isinstance(cfg, dict) and isinstance(cfg.get("args"), list)
                and isinstance(cfg.get("buffers"), dict) and isinstance(cfg.get("constexprs"), dict)):
            raise ExampleSkip(f"CONFIGS[{str(cname)[:40]!r}] lacks args/buffers/constexprs")
        for arg in cfg["args"]:
            if not (isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[0], str) and arg[0].isidentifier()
                    and isinstance(arg[1], tuple) and arg[1] and arg[1][0] in ("tensor", "scalar")):
                raise ExampleSkip(f"CONFIGS[{cname!r}] has an argument that is not (param, spec): {str(arg)[:60]}")
            if arg[1][0] == "tensor" and not (len(arg[1]) == 6 and arg[1][1] in cfg["buffers"]):
                raise ExampleSkip(f"CONFIGS[{cname!r}] argument {arg[0]} views an unknown buffer")
    return configs


def read_example(artifact: dict[str, Any]) -> Example:
    """The example of a Triton artifact with a reference, checked; else ExampleSkip(reason)."""
    raw = artifact.get("kernel")
    kernel: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kernel.get("kernel_type") != "triton":
        raise ExampleSkip("CUDA artifact: no CUDA references exist yet (the examples carry none)")
    try:
        stem = safe_stem(str(artifact.get("name", "")))
    except KernelNameError as exc:
        raise ExampleSkip(f"artifact name is not a safe kernel name: {exc.message}") from None
    code = str(kernel.get("invocation_example") or "")
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExampleSkip("invocation example does not parse") from None
    defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    lit = _literals(tree)
    if "reference" not in defs or "REFERENCE_OUTPUTS" not in lit:
        raise ExampleSkip("no reference in the invocation example")
    missing = [f for f in _INTERFACE if f not in defs]
    if missing:
        raise ExampleSkip(f"invocation example lacks {', '.join(missing)}()")
    try:
        kernel_file = artifact_file_name(artifact, lit.get("KERNEL_FILE"), reserved=RESERVED_FILES)
    except ValueError as exc:
        raise ExampleSkip(f"refused: {exc}") from None
    entry = lit.get("ENTRY")
    if not (isinstance(entry, str) and all(p.isidentifier() and not p.startswith("__") for p in entry.split("."))):
        raise ExampleSkip("ENTRY is not a dotted identifier")
    source = str(kernel.get("source_code") or "")
    findings = triton_module_findings(source)
    if findings:
        raise ExampleSkip("refused: the kernel source may not be imported: " + "; ".join(findings[:2]))
    configs = _check_configs(lit.get("CONFIGS"))
    outputs = _check_outputs(lit.get("REFERENCE_OUTPUTS"), [p for p, _s in configs["SMALL"]["args"]])
    header = _header(code)
    ref = next((ln.split(":", 1)[1].strip() for ln in header if ln.startswith("reference:")), "")
    src, _, origin = ref.partition(" ")
    model, workload = lit.get("MODEL_NAME"), lit.get("WORKLOAD")
    return Example(name=str(artifact["name"]), stem=stem, kernel_file=kernel_file, entry=entry, configs=configs,
                   outputs=outputs, model=model if isinstance(model, str) else None,
                   workload=workload if isinstance(workload, str) else None,
                   reference_source=src or None, reference_origin=origin.strip() or None,
                   tolerance_lines=_tolerances(header), header=tuple(header), code=code, source_code=source,
                   tree=tree)
