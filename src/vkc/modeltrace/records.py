"""Frozen records of the model-trace stage (leaf module: imports nothing of vkc).

``ModelTrace`` holds, per traced step, every event in launch order; ``to_json``/``from_json``
give the on-disk cache form (also the golden-test fixture under ``tests/data/modeltrace/``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ModelTrace",
    "ScalarArg",
    "StepSpec",
    "StepTrace",
    "TensorArg",
    "TraceOptions",
    "TracedEvent",
    "trace_from_json",
    "trace_to_json",
]

SCHEMA = 1


@dataclass(frozen=True)
class StepSpec:
    workload: str                 # "decode" | "prefill"
    batch: int                    # sequences
    ctx: int = 0                  # decode: context length (tokens already in the cache + the new one)
    prompt_len: int = 0           # prefill: prompt tokens per sequence

    @property
    def id(self) -> str:
        n = self.ctx if self.workload == "decode" else self.prompt_len
        return f"{self.workload}-b{self.batch}-{'ctx' if self.workload == 'decode' else 'p'}{n}"


@dataclass(frozen=True)
class TraceOptions:
    steps: tuple[StepSpec, ...]
    tp: int = 1
    attention_backend: str = "TRITON_ATTN"
    kv_cache_dtype: str = "auto"
    block_size: int | None = None     # vLLM's --block-size; None: vLLM's start-up chooses it (ModelTrace.block_size)
    quantization: str | None = None   # vLLM's --quantization (online: a bf16 checkpoint quantized at load)
    kda_prefill_backend: str | None = None   # vLLM's --kda-prefill-backend (None: vLLM's default, "auto")
    # ids of steps whose failure leaves the trace standing: it lacks them and says why (notes["failed_steps"])
    optional_steps: tuple[str, ...] = ()
    recorded: tuple[str, ...] = ()    # recording stand-ins the variant asks for (vkc.modeltrace.recorded.RECORDED)
    linear_backend: str | None = None   # vLLM's --linear-backend (None: vLLM's default, "auto")
    dtype: str | None = None          # vLLM's --dtype (None: vLLM's default, "auto": the config's torch_dtype)


@dataclass(frozen=True)
class TensorArg:
    dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int                   # storage offset, in elements
    itemsize: int
    base: str                     # id of the storage it views ("s12"), shared by views of one buffer
    base_nbytes: int
    producer: str                 # "event:<i>" | "earlier-step:<name>" | "input:<n>" | "metadata:<field>" | "weight:<param>" | "kv_cache:<layer>" | "gathered:metadata:block_table_tensor" | "alloc" | "unknown"
    origin: str = ""              # where the worker first named the storage ("kv_cache:<layer>", ...); "" in older traces
    fill: float | None = None     # producer "alloc" by torch.zeros/ones/full: that constant (None: empty, or unknown)


@dataclass(frozen=True)
class ScalarArg:
    value: Any


Arg = Any  # TensorArg | ScalarArg | tuple[TensorArg | ScalarArg, ...]


@dataclass(frozen=True)
class TracedEvent:
    index: int
    kind: str                     # "triton" | "op" (vLLM custom op) | "aten" | "collective" | "vllm_op"
    #                               | "external" (a compiled kernel outside the tree, e.g. FlashAttention)
    name: str                     # Triton "module:qualname"; op "_C::rms_norm"; aten "aten::mm"
    layer: int | None             # outermost layers.N on the module stack
    module: str | None            # innermost module name
    args: tuple[tuple[str, Arg], ...]
    outputs: tuple[TensorArg, ...] = ()
    grid: tuple[int, ...] | None = None
    constexprs: Mapping[str, Any] = field(default_factory=dict)
    num_warps: int | None = None
    num_stages: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)   # site, autotune, heuristics, signature, bytes

    def tensors(self) -> list[tuple[str, TensorArg]]:
        out: list[tuple[str, TensorArg]] = []
        for n, a in self.args:
            if isinstance(a, TensorArg):
                out.append((n, a))
            elif isinstance(a, tuple):
                out.extend((f"{n}[{i}]", x) for i, x in enumerate(a) if isinstance(x, TensorArg))
        return out


@dataclass(frozen=True)
class StepTrace:
    spec: StepSpec
    num_tokens: int
    events: tuple[TracedEvent, ...]
    forward_s: float


@dataclass(frozen=True)
class ModelTrace:
    model_id: str
    vllm_version: str
    tree_sha256: str | None
    options: TraceOptions
    full_layers: int
    traced_layers: int
    layer_types: tuple[str, ...]           # per layer of the full model
    layer_weights: Mapping[int, float]     # traced layer -> full-model layers it stands for
    steps: tuple[StepTrace, ...]
    backends: tuple[str, ...]              # vLLM's own "Using ... backend" log lines
    importable: Mapping[str, bool]         # optional packages that change vLLM's choices
    warnings: tuple[str, ...]
    fingerprint_status: str                # "known" | "unknown"
    fingerprints: Mapping[str, str | None]
    vllm_config: Mapping[str, Any]
    versions: Mapping[str, str]
    timings: Mapping[str, float]
    notes: Mapping[str, Any] = field(default_factory=dict)   # fake mismatches, re-entered ops, ...

    def step(self, spec: StepSpec) -> StepTrace:
        for s in self.steps:
            if s.spec == spec:
                return s
        raise KeyError(spec.id)

    @property
    def block_size(self) -> int:
        """The KV-cache block size the trace ran with: what vLLM's start-up chose (``vllm_config``), else the
        requested ``--block-size``, else vLLM's default 16 (traces made before the choice was recorded)."""
        chosen = self.vllm_config.get("block_size") or self.options.block_size
        return int(chosen) if chosen else 16

    def weight(self, ev: TracedEvent) -> float:
        return 1.0 if ev.layer is None else float(self.layer_weights.get(ev.layer, 1.0))


# ----------------------------------------------------------------------------- JSON


def _arg_to(a: Any) -> Any:
    if isinstance(a, TensorArg):
        return {"kind": "tensor", "dtype": a.dtype, "shape": list(a.shape), "stride": list(a.stride),
                "offset": a.offset, "itemsize": a.itemsize, "base": a.base, "base_nbytes": a.base_nbytes,
                "producer": a.producer, **({"origin": a.origin} if a.origin else {}),
                **({"fill": a.fill} if a.fill is not None else {})}
    if isinstance(a, tuple):
        return [_arg_to(x) for x in a]
    return {"kind": "scalar", "value": a.value}


def _fill(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _arg_from(d: Any) -> Any:
    if isinstance(d, list):
        return tuple(_arg_from(x) for x in d)
    if d.get("kind") == "tensor":
        return TensorArg(d["dtype"], tuple(d["shape"]), tuple(d["stride"]), int(d["offset"]), int(d["itemsize"]),
                         d["base"], int(d.get("base_nbytes", 0)), d.get("producer", "unknown"), str(d.get("origin", "")),
                         _fill(d.get("fill")))
    return ScalarArg(d.get("value"))


_EV_KEYS = ("index", "kind", "name", "layer", "module", "args", "outputs", "grid", "constexprs", "num_warps",
            "num_stages")


def _pairs(args: Any) -> list[tuple[str, Any]]:
    return list(args.items()) if isinstance(args, Mapping) else [(k, v) for k, v in args]


def event_from_worker(d: Mapping[str, Any]) -> TracedEvent:
    return TracedEvent(
        index=int(d["index"]), kind=d["kind"], name=d["name"], layer=d.get("layer"), module=d.get("module"),
        args=tuple((k, _arg_from(v)) for k, v in _pairs(d.get("args", []))),
        outputs=tuple(_arg_from(o) for o in d.get("outputs", [])),
        grid=tuple(d["grid"]) if d.get("grid") is not None else None,
        constexprs=dict(d.get("constexprs") or {}), num_warps=d.get("num_warps"), num_stages=d.get("num_stages"),
        extra={k: v for k, v in sorted(d.items()) if k not in _EV_KEYS})


def _event_to(e: TracedEvent) -> dict[str, Any]:
    return {"index": e.index, "kind": e.kind, "name": e.name, "layer": e.layer, "module": e.module,
            "args": [[k, _arg_to(v)] for k, v in e.args], "outputs": [_arg_to(o) for o in e.outputs],
            "grid": list(e.grid) if e.grid is not None else None, "constexprs": dict(e.constexprs),
            "num_warps": e.num_warps, "num_stages": e.num_stages, **dict(e.extra)}


event_to_json = _event_to          # public: the one JSON form of an event (read back by event_from_worker)


def _spec_to(s: StepSpec) -> dict[str, Any]:
    return {"workload": s.workload, "batch": s.batch, "ctx": s.ctx, "prompt_len": s.prompt_len}


def trace_to_json(t: ModelTrace) -> dict[str, Any]:
    o = t.options
    return {
        "schema": SCHEMA, "model_id": t.model_id, "vllm_version": t.vllm_version, "tree_sha256": t.tree_sha256,
        "options": {"steps": [_spec_to(s) for s in o.steps], "tp": o.tp, "attention_backend": o.attention_backend,
                    "kv_cache_dtype": o.kv_cache_dtype, "block_size": o.block_size,
                    **({"quantization": o.quantization} if o.quantization else {}),
                    **({"kda_prefill_backend": o.kda_prefill_backend} if o.kda_prefill_backend else {}),
                    **({"optional_steps": list(o.optional_steps)} if o.optional_steps else {}),
                    **({"recorded": list(o.recorded)} if o.recorded else {}),
                    **({"linear_backend": o.linear_backend} if o.linear_backend else {}),
                    **({"dtype": o.dtype} if o.dtype else {})},
        "full_layers": t.full_layers, "traced_layers": t.traced_layers, "layer_types": list(t.layer_types),
        "layer_weights": {str(k): v for k, v in sorted(t.layer_weights.items())},
        "steps": [{"spec": _spec_to(s.spec), "num_tokens": s.num_tokens, "forward_s": s.forward_s,
                   "events": [_event_to(e) for e in s.events]} for s in t.steps],
        "backends": list(t.backends), "importable": dict(sorted(t.importable.items())),
        "warnings": list(t.warnings), "fingerprint_status": t.fingerprint_status,
        "fingerprints": dict(sorted(t.fingerprints.items())), "vllm_config": dict(t.vllm_config),
        "versions": dict(t.versions), "timings": dict(t.timings), "notes": dict(t.notes),
    }


def trace_from_json(d: Mapping[str, Any]) -> ModelTrace:
    o = d["options"]
    opts = TraceOptions(tuple(StepSpec(**s) for s in o["steps"]), int(o["tp"]), o["attention_backend"],
                        o["kv_cache_dtype"], None if o.get("block_size") is None else int(o["block_size"]),
                        o.get("quantization"), o.get("kda_prefill_backend"), tuple(o.get("optional_steps", ())),
                        tuple(o.get("recorded", ())), linear_backend=o.get("linear_backend"), dtype=o.get("dtype"))
    steps = tuple(StepTrace(StepSpec(**s["spec"]), int(s["num_tokens"]),
                            tuple(event_from_worker(e) for e in s["events"]), float(s["forward_s"]))
                  for s in d["steps"])
    return ModelTrace(
        model_id=d["model_id"], vllm_version=d["vllm_version"], tree_sha256=d.get("tree_sha256"), options=opts,
        full_layers=int(d["full_layers"]), traced_layers=int(d["traced_layers"]),
        layer_types=tuple(d["layer_types"]), layer_weights={int(k): float(v) for k, v in d["layer_weights"].items()},
        steps=steps, backends=tuple(d["backends"]), importable=dict(d["importable"]), warnings=tuple(d["warnings"]),
        fingerprint_status=d["fingerprint_status"], fingerprints=dict(d["fingerprints"]),
        vllm_config=dict(d["vllm_config"]), versions=dict(d["versions"]), timings=dict(d["timings"]),
        notes=dict(d.get("notes", {})))
