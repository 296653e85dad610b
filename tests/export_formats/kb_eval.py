"""Evaluate exported KernelBench tasks: ``python kb_eval.py TASK_DIR...`` prints one JSON line each.

Independent of the generated code: imports ``reference.py`` and ``model_new.py`` from the task
folder, builds the inputs with ``get_inputs()`` (once, as KernelBench does), runs ``Model`` then
``ModelNew`` on them and compares each output at the tolerance ``vkc_task.json`` gives for its
dtype (``allclose`` in float64, NaN == NaN: a poisoned element the reference leaves undefined).
Run it in a subprocess: the task's example sets TRITON_INTERPRET=1 on CPU before triton loads.
"""
import importlib.util
import json
import os
import sys


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def evaluate(task_dir):
    with open(os.path.join(task_dir, "vkc_task.json")) as f:
        sidecar = json.load(f)
    ref = _load(os.path.join(task_dir, sidecar["entry"]["reference"].split("::")[0]), "kb_task_reference")
    new = _load(os.path.join(task_dir, sidecar["entry"]["model_new"].split("::")[0]), "kb_task_model_new")
    import torch

    inputs = ref.get_inputs()
    want = ref.Model(*ref.get_init_inputs())(*inputs)
    got = new.ModelNew(*new.get_init_inputs())(*inputs)
    want = list(want) if isinstance(want, tuple) else [want]
    got = list(got) if isinstance(got, tuple) else [got]
    result = {"task": sidecar["task"], "config": ref.CONFIG, "outputs": [], "ok": len(want) == len(got)}
    for spec, w, g in zip(sidecar["outputs"], want, got):
        dt = str(g.dtype).replace("torch.", "")
        tol = spec["tolerance"].get(dt, spec["tolerance"].get("default", {"atol": 1e-5, "rtol": 1.3e-6}))
        same_shape = tuple(w.shape) == tuple(g.shape) and w.dtype == g.dtype
        ok = same_shape and bool(torch.allclose(g.double(), w.double(), atol=tol["atol"], rtol=tol["rtol"],
                                                equal_nan=True))
        err = (g.double() - w.double()).abs().nan_to_num(0.0) if same_shape else None
        result["outputs"].append({"param": spec["param"], "dtype": dt, "ok": ok, **tol,
                                  "max_abs_err": float(err.max()) if err is not None and err.numel() else None})
        result["ok"] = result["ok"] and ok
    return result


if __name__ == "__main__":
    for task in sys.argv[1:]:
        try:
            res = evaluate(task)
        except Exception as exc:  # reported, not raised: one line per task
            res = {"task": os.path.basename(task.rstrip("/")), "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        print("KB_EVAL " + json.dumps(res, sort_keys=True), flush=True)
