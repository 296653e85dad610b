"""Run exported FlashInfer-Trace definitions on CPU: ``python fi_eval.py ROOT DEFINITION...``.

Uses flashinfer-bench's own pieces: ``TraceSet.from_path``, ``load_safetensors`` and
``gen_inputs`` for each workload's inputs, the reference's ``run`` (value-returning) and the
solution's ``run`` in destination-passing style on outputs from ``allocate_outputs``.  Compares
at vkc's tolerance for the output's dtype (``export_summary.json``) in float64, NaN == NaN.
Prints one ``FI_EVAL {json}`` line per definition.  Set TRITON_INTERPRET=1 (CPU).
"""
import importlib
import json
import sys
import tempfile
from pathlib import Path


def _module(sources, tag):
    d = Path(tempfile.mkdtemp(prefix="fi-eval-"))
    pkg = d / f"fi_eval_{tag}"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for path, text in sources:
        (pkg / path).write_text(text)
    sys.path.insert(0, str(d))
    return importlib.import_module(f"fi_eval_{tag}.main")


def evaluate(root, name, tolerances):
    import torch
    from flashinfer_bench.bench.evaluators.utils import allocate_outputs
    from flashinfer_bench.bench.utils import gen_inputs, load_safetensors
    from flashinfer_bench.data import TraceSet

    ts = TraceSet.from_path(root)
    d = ts.definitions[name]
    tag = str(abs(hash(name)))
    ref = _module([("main.py", d.reference)], "ref" + tag)
    sol = ts.solutions[name][0]
    impl = _module([(s.path, s.content) for s in sol.sources], "sol" + tag)
    results = []
    for trace in ts.workloads[name]:
        w = trace.workload
        torch.manual_seed(0)
        inp = gen_inputs(d, w, "cpu", load_safetensors(d, w, ts.root))
        want = ref.run(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inp])
        want = list(want) if isinstance(want, tuple) else [want]
        out = allocate_outputs(d, inp, "cpu")
        impl.run(*inp, *out)
        oks = []
        for oname, o, r in zip(d.outputs, out, want):
            atol, rtol = tolerances[oname].get(str(o.dtype).replace("torch.", ""), (1e-5, 1.3e-6))
            oks.append(tuple(o.shape) == tuple(r.shape) and o.dtype == r.dtype
                       and bool(torch.allclose(o.double(), r.double(), atol=atol, rtol=rtol, equal_nan=True)))
        results.append({"workload": w.uuid, "ok": all(oks) and len(oks) == len(d.outputs)})
    return {"definition": name, "ok": bool(results) and all(r["ok"] for r in results), "workloads": results}


if __name__ == "__main__":
    summary = json.loads((Path(sys.argv[1]) / "export_summary.json").read_text())
    tols = {item["definition"]: item["tolerances"] for item in summary["items"]}
    for definition in sys.argv[2:]:
        try:
            res = evaluate(sys.argv[1], definition, tols[definition])
        except Exception as exc:  # reported, not raised: one line per definition
            res = {"definition": definition, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        print("FI_EVAL " + json.dumps(res, sort_keys=True), flush=True)
