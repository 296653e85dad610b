"""Pick the first signature variant that Triton's front end accepts (generic launches only).

The generic path (:mod:`.generic`) can only guess pointer element types from the source;
``probe_variants`` lowers the entry to Triton IR (``ASTSource.make_ir`` for sm_90, no LLVM, no
ptxas, no GPU) under each candidate signature in a subprocess (``python -m
vkc.invoke.triton.probe``, JSON on stdin) and returns the index of the first one that
type-checks, with the front end's message for each rejected one.  Deterministic: the same
source and variants give the same answer.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROBE_TIMEOUT_S = 120


def probe_variants(source: str, kernel_file: str, entry: str, variants: list[dict[str, Any]],
                   num_warps: int = 4) -> tuple[int | None, list[str]]:
    """(index of the first accepted variant or None, messages of the rejected ones)."""
    if os.environ.get("VKC_NO_PROBE") == "1":
        return None, ["probe disabled (VKC_NO_PROBE=1)"]
    req = {"source": source, "kernel_file": kernel_file, "entry": entry, "variants": variants,
           "num_warps": num_warps}
    if os.environ.get("VKC_PROBE_INPROCESS") == "1":   # batch tools that already hold triton (no isolation)
        try:
            out = _probe(req)
        except Exception as e:  # noqa: BLE001
            return None, [f"probe failed: {type(e).__name__}: {e}"[:300]]
        return out.get("ok"), out.get("errors", [])
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    try:
        proc = subprocess.run([sys.executable, "-m", "vkc.invoke.triton.probe"], input=json.dumps(req),
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env, check=False)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError, OSError) as e:
        return None, [f"probe failed: {type(e).__name__}"]
    return out.get("ok"), out.get("errors", [])


def _message(e: BaseException, depth: int = 0) -> str:
    lines = str(e).strip().splitlines()
    carets = [i for i, ln in enumerate(lines) if ln.strip() == "^"]
    tail = " ".join(x.strip() for x in lines[carets[-1] + 1:]) if carets else (lines[-1] if lines else "")
    cause = e.__cause__ or e.__context__
    if not tail.strip() and cause is not None and depth < 8:
        return _message(cause, depth + 1)
    return f"{type(e).__name__}: {tail}"[:300]


def _main() -> int:
    print(json.dumps(_probe(json.loads(sys.stdin.read()))))
    return 0


def _probe(req: dict) -> dict:
    from triton._C.libtriton import ir
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend

    from vkc.toolchain.triton import load_entry, make_ast_source

    errors: list[str] = []
    ok = None
    with tempfile.TemporaryDirectory(prefix="vkc-probe-") as tmp:
        src = Path(tmp) / req["kernel_file"]
        src.write_text(req["source"])
        try:
            fn = load_entry(src, req["entry"])
        except Exception as e:  # noqa: BLE001
            return {"ok": None, "errors": [f"load: {type(e).__name__}: {e}"[:300]]}
        target = GPUTarget("cuda", 90, 32)
        backend = make_backend(target)
        for i, v in enumerate(req["variants"]):
            try:
                ast_src = make_ast_source(fn, v["signature"], v["constexprs"], {})
                options = backend.parse_options({"num_warps": req["num_warps"]})
                context = ir.context()
                ir.load_dialects(context)
                backend.load_dialects(context)
                ast_src.make_ir(target, options, backend.get_codegen_implementation(options),
                                backend.get_module_map(), context)
            except Exception as e:  # noqa: BLE001  (the front end's verdict is the result)
                errors.append(_message(e))
                continue
            ok = i
            break
    return {"ok": ok, "errors": errors}


if __name__ == "__main__":
    sys.exit(_main())
