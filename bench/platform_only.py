"""Platform-only Triton kernels of a vLLM tree (issue 14): the import graph's verdict, by folder.

Runs the Triton scan (``vkc.index.triton_scan.run_scan``) with the import-graph step
(``vkc.index.platform_graph``) timed (wall and CPU seconds), then prints the entry kernels by
folder (``vllm/models/*/amd|xpu|nvidia|common/``, else ``other``) and rocm_only, the amd/ and
xpu/ entries that stay CUDA with the CUDA-reachable import that keeps each module, and every
platform-only entry outside amd/ and xpu/ with its note.

    python bench/platform_only.py [--vllm PATH]
"""
from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path
from typing import Any

from vkc.index import triton_scan
from vkc.index.platform_sites import import_sites
from vkc.index.triton_files import list_modules
from vkc.records import KernelEntry


def folder(k: KernelEntry) -> str:
    parts = k.file.split("/")
    platform = parts[3] if len(parts) > 4 and parts[1] == "models" else ""
    return platform if platform in ("amd", "xpu", "nvidia", "common") else "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vllm", help="a vLLM source tree (default: the 0.33.0 sdist in the vkc cache)")
    args = ap.parse_args()
    if args.vllm:
        from vkc.records import SourceTree
        tree = SourceTree(root=Path(args.vllm), version="local", origin=args.vllm)
    else:
        from vkc.source import resolve_source
        tree = resolve_source()
    timing: dict[str, float] = {}
    graph = triton_scan.platform_only_modules

    def timed(*a: Any, **k: Any) -> dict[str, str]:
        t, c = time.perf_counter(), time.process_time()
        out = graph(*a, **k)
        timing.update(wall=time.perf_counter() - t, cpu=time.process_time() - c)
        return out

    triton_scan.platform_only_modules = timed       # type: ignore[assignment]
    t = time.perf_counter()
    scan = triton_scan.run_scan(tree)
    total = time.perf_counter() - t
    print(f"scan {total:.1f} s; import graph {timing['wall']:.2f} s wall, {timing['cpu']:.2f} s CPU; "
          f"{len(scan.platform_only)} platform-only modules")
    entries = [k for k in scan.entries if k.role == "entry"]
    by = collections.Counter((folder(k), k.rocm_only) for k in entries)
    print("entry kernels by folder (rocm_only / all):")
    for f in ("amd", "xpu", "nvidia", "common", "other"):
        print(f"  {f:7} {by[(f, True)]:4} / {by[(f, True)] + by[(f, False)]}")
    paths = list_modules(tree.root)
    texts = {m: (tree.root / rel).read_text(encoding="utf-8", errors="replace") for m, rel in paths.items()}
    pkgs = {m for m, rel in paths.items() if rel.endswith("/__init__.py")}
    keepers: dict[str, set[str]] = collections.defaultdict(set)
    for s in import_sites(paths, texts, pkgs):
        if s.kind == "cuda" and s.src not in scan.platform_only and not s.src.startswith(s.dst + "."):
            keepers[s.dst].add(s.src)
    print("amd/ and xpu/ entries that stay CUDA (module <- a CUDA-reachable importer):")
    for k in entries:
        if folder(k) in ("amd", "xpu") and not k.rocm_only:
            mod = k.module or ""
            chain = [mod]
            while chain[-1] in keepers and len(chain) < 6:
                nxt = sorted(keepers[chain[-1]] - set(chain))
                if not nxt:
                    break
                chain.append(nxt[0])
                if not any(p in nxt[0] for p in (".amd", ".xpu")):
                    break
            print(f"  {k.qualified}  <- {' <- '.join(chain[1:]) or '(not imported)'}")
    print("platform-only entries outside amd/ and xpu/:")
    for k in entries:
        if folder(k) not in ("amd", "xpu") and k.platform_note:
            print(f"  {k.qualified}: {k.platform_note}")


if __name__ == "__main__":
    main()
