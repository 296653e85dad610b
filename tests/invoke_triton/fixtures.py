"""Extractions for the invoker tests, from data files (no index scan, no extractor run).

``tests/data/invoke_triton/kernels/<name>.py`` is the extractor's self-contained source and
``<name>.json`` the KernelEntry + handoff it produced (regenerate with
``python tests/invoke_triton/fixtures.py`` after extractor changes).
"""
from __future__ import annotations

import json
from pathlib import Path

from vkc.records import Extraction, Handoff, KernelEntry, LaunchSite, ModelConfig

DATA = Path(__file__).parent.parent / "data" / "invoke_triton"
KERNELS = DATA / "kernels"


def load_extraction(name: str) -> Extraction:
    d = json.loads((KERNELS / f"{name}.json").read_text())
    sites = tuple(LaunchSite(**s) for s in d.pop("launch_sites"))
    h = d.pop("handoff")
    facts = dict(d.pop("facts"), name=name)
    d["decorators"] = tuple(d["decorators"])
    d["template_params"] = tuple(d["template_params"])
    kernel = KernelEntry(launch_sites=sites, **d)
    handoff = Handoff(leaf_symbols=tuple(h["leaf_symbols"]), arg_order=tuple(h["arg_order"]), grid_expr=h["grid_expr"],
                      meta_params=h["meta_params"], guards=h["guards"], smem_formula=h["smem_formula"],
                      stride_semantics=h["stride_semantics"], notes=tuple(n for n in [h["notes"]] if n))
    return Extraction(kernel=kernel, kernel_type="triton", source_code=(KERNELS / f"{name}.py").read_text(),
                      handoff=handoff, facts=facts)


def model(model_id: str) -> ModelConfig:
    """The bundled snapshot via vkc.modelcfg (offline)."""
    from vkc.modelcfg import load_model

    return load_model(model_id, offline=True)


def _regenerate() -> None:   # pragma: no cover - maintenance helper
    import dataclasses

    from vkc.extract.triton import extract_triton
    from vkc.index.triton_scan import scan_triton
    from vkc.source import resolve_source

    tree = resolve_source()
    by_q = {k.qualified: k for k in scan_triton(tree)}
    for path in sorted(KERNELS.glob("*.json")):
        old = json.loads(path.read_text())
        k = by_q[f"{old['module']}:{old['qualname']}"]
        e = extract_triton(tree, k)
        (KERNELS / f"{path.stem}.py").write_text(e.source_code)
        d = dataclasses.asdict(k)
        d["handoff"] = e.handoff.to_json()
        d["facts"] = {x: e.facts[x] for x in ("entry_symbol", "autotuned", "heuristics", "module_file")}
        path.write_text(json.dumps(d, indent=1, sort_keys=True, default=list))


if __name__ == "__main__":   # pragma: no cover
    _regenerate()
