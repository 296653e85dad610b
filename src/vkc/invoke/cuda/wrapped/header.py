"""The provenance header of a wrapper-compiled host program (``//`` lines, :func:`header_fields`)."""
from __future__ import annotations

from dataclasses import dataclass

import vkc
from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.provenance import Provenance
from vkc.invoke.cuda.header import model_text
from vkc.invoke.cuda.literals import comment_text
from vkc.records import Extraction, ModelConfig, SourceTree

from .host import HostCode

__all__ = ["HeaderInputs", "header_fields"]


def _text(*lines: str) -> str:
    return "\n".join(comment_text(ln) for ln in lines)


def _n(v: object) -> str:
    return "n/a" if v is None else str(v)


@dataclass(frozen=True)
class HeaderInputs:
    """What the header says beyond the tree, the kernel and the model."""

    op: str
    schema: str
    host: HostCode
    bind_file: str
    instantiation: str
    launches: tuple[str, ...]        # kernels this call launches, when known; else ()
    launches_from: str               # who knows it: "vkc's dispatch rule for <op>" / "the call's source"
    op_kernels: tuple[str, ...]      # every kernel the op's host function can reach (the op map)
    traced: tuple[str, ...]          # one line per argument of the FULL call
    configs: tuple[str, ...]         # "FULL: ...", "SMALL: ..."
    bytes_rule: str
    notes: tuple[str, ...]


def _model(model: ModelConfig | None, d: ModelDims | None) -> str:
    if model is None or d is None:
        return _text("none (the op call came from another source; see invocation)")
    return model_text(model, d)


def header_fields(tree: SourceTree, ex: Extraction, model: ModelConfig | None, dims: ModelDims | None,
                  workload: str, why: str, prov: Provenance, h: HeaderInputs, *, command: str, build: str,
                  stem: str) -> list[tuple[str, str]]:
    k = ex.kernel
    launch = ex.facts.get("launch") or {}
    fields = [
        (f"vkc {vkc.__version__} -- invocation example",
         _text("CUDA host program for one vLLM kernel: vLLM's own host function of the op, compiled against "
               "vkc's Tensor stand-in (wrapper-compiled)")),
        ("vLLM", _text(tree.citation)),
        ("KERNEL", _text(f"{k.qualname} at {k.file}:{k.line}")),
        ("WRAPPER", _text(f"{h.host.function} ({h.host.where}), the CUDA implementation {h.bind_file} registers for "
                          f"{h.op}", f"schema: {h.schema}")),
    ]
    if launch.get("file"):
        fields.append(("LAUNCH SITE (extractor)",
                       _text(f"{launch.get('file')}:{launch.get('line')} ({launch.get('wrapper')})")))
    fields += [
        ("MODEL_NAME", _model(model, dims)),
        ("WORKLOAD", _text(f"{workload} ({why})")),
        ("invocation", _text(prov.header_value())),
        ("INSTANTIATION", _text(f"picked at run time by vLLM's dispatch in {h.host.function} over the call's dtypes "
                                "and sizes; the marker names the extractor's instantiation for the call's dtype",
                                f"marker: {h.instantiation}")),
        ("LAUNCH", _text("grid, block, shared memory and template arguments: computed by vLLM's host code above, "
                         "over the stand-in tensors", _launches(h))),
        ("SIZING", _text(*h.configs)),
        ("TRACED CALL", _text(*h.traced)),
        ("GB/s BYTES", _text(f"rule: {h.bytes_rule}")),
        ("HOST CODE", _text(f"inlined verbatim: {', '.join(h.host.inlined)}")),
    ]
    fields += [("CONFIG", _text(s)) for s in (model.sources if model is not None else ())] or [("CONFIG", "n/a")]
    fields += [
        ("COMMAND", _text(command)),
        ("BUILD", _text(build)),
        ("RUN", _text(f"./{stem}   (env: SMALL_SANITY=1 the SMALL config, 5 repetitions; VKC_ITERS=<n>; "
                      "VKC_DUMP_DIR=<dir> dumps every storage + manifest.txt)")),
        ("PRINTS", "RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>"),
    ]
    fields += [("NOTE", _text(n)) for n in h.notes]
    return fields


def _launches(h: HeaderInputs) -> str:
    names = [k.rsplit(":", 1)[-1] for k in (h.launches or h.op_kernels)]
    if len(h.op_kernels) == 1:
        return f"{h.op} launches {names[0]}, the one kernel its host function reaches"
    if h.launches:
        return f"this call launches ({h.launches_from}): {', '.join(names)}; time_ms times them all"
    return (f"{h.op} can launch {', '.join(names)}; which ones this call takes is vLLM's dispatch at run time "
            "(time_ms times the whole call)")

