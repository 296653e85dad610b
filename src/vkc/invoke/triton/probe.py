"""Pick the first signature variant that Triton's front end accepts (generic launches only).

The generic path (:mod:`.generic`) can only guess pointer element types from the source;
``probe_variants`` lowers the entry to Triton IR (``ASTSource.make_ir`` for sm_90, no LLVM, no
ptxas, no GPU) under each candidate signature and returns the index of the first one that
type-checks, with the front end's message for each rejected one.  It runs in this process's
probe server (:mod:`.probe_server`: one long-lived process, each kernel in a forked child with
its output captured); ``python -m vkc.invoke.triton.probe`` (JSON on stdin) is the same probe in
a fresh interpreter.  Deterministic: the same source and variants give the same answer.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from vkc.invoke.triton.probe_server import PROBE_TIMEOUT_S, ask, run_probe

__all__ = ["PROBE_TIMEOUT_S", "probe_variants"]


def probe_variants(source: str, kernel_file: str, entry: str, variants: list[dict[str, Any]],
                   num_warps: int = 4) -> tuple[int | None, list[str]]:
    """(index of the first accepted variant or None, messages of the rejected ones)."""
    if os.environ.get("VKC_NO_PROBE") == "1":
        return None, ["probe disabled (VKC_NO_PROBE=1)"]
    req = {"source": source, "kernel_file": kernel_file, "entry": entry, "variants": variants,
           "num_warps": num_warps}
    if os.environ.get("VKC_PROBE_INPROCESS") == "1":   # batch tools that already hold triton (no isolation)
        try:
            out = run_probe(req)
        except Exception as e:  # noqa: BLE001
            return None, [f"probe failed: {type(e).__name__}: {e}"[:300]]
        return out.get("ok"), out.get("errors", [])
    out = ask(req, PROBE_TIMEOUT_S)
    return out.get("ok"), out.get("errors", [])


def _main() -> int:
    print(json.dumps(run_probe(json.loads(sys.stdin.read()))))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
