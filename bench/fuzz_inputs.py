"""A seeded, bounded fuzz pass over untrusted inputs through the CLI (issue 15, "Acceptance").

* ``config.json`` values: a bundled model config with 1-3 fields replaced by hostile values
  (huge, negative, non-finite, wrong types, deep nesting, control characters), run through
  ``vkc model show PATH --offline`` and, for a few cases, ``vkc collect KERNEL --model PATH``;
* artifact fields: a valid Triton artifact with hostile ``name``, ``kernel_type``,
  ``source_code`` (module-level side effects), ``invocation_example`` (``KERNEL_FILE``
  escapes, a broken ``VKC_COMPILE``) or a broken file (non-finite/deep JSON), all verified
  in one ``vkc verify --compile`` run (and ``--run`` with ``--run``).

Every subprocess runs with ``HF_HUB_OFFLINE=1`` in a fresh working folder; the real vkc cache
is only read.  Printed: cases, tracebacks, exit-70s, files outside their folder (hostile
inputs aim their writes at ``<tmp>/outside/``; anything there, or a ``vkcfuzz`` file in
``/tmp`` or the working folder's parent, counts), and exit codes seen.  Goal: 0/0/0.

    python bench/fuzz_inputs.py [--seed 15] [--configs 40] [--artifacts 40] [--collect 3] [--run]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TAG = "vkcfuzz"
DIMS = ["hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "intermediate_size",
        "head_dim", "vocab_size", "max_position_embeddings", "sliding_window", "num_experts",
        "num_experts_per_tok", "moe_intermediate_size", "kv_lora_rank", "rms_norm_eps"]
OTHER = ["torch_dtype", "model_type", "architectures", "text_config", "rope_scaling", "layer_types",
         "quantization_config", "use_sliding_window"]
NAN = object()   # written as the bare JSON token NaN
INF = object()


def hostile_values(rng: random.Random) -> list[Any]:
    deep: Any = 0
    for _ in range(rng.choice([50, 3000])):
        deep = [deep]
    return [0, -1, -4096, 2**31, 2**31 - 1, 2**63, 10**12, 10**400, 1e308, -0.0, 1.5, NAN, INF, True, None,
            "4096", "", "\x1b[31mred\x1b[0m", "a" * 5000, "line\nbreak", [], {}, [1, 2], {"a": 1}, deep,
            "bfloat16", "torch.float16", "fp8", 7]


def dump(obj: Any) -> str:
    text = json.dumps(obj, default=lambda o: "__NAN__" if o is NAN else "__INF__")
    return text.replace('"__NAN__"', "NaN").replace('"__INF__"', "Infinity")


def config_cases(rng: random.Random, n: int) -> list[str]:
    from vkc.modelcfg.snapshots import load_snapshot

    base = dict(load_snapshot("meta-llama/Llama-3.1-8B-Instruct").config)
    moe = dict(load_snapshot("Qwen/Qwen3-30B-A3B").config)
    pool = hostile_values(rng)
    cases = []
    for _ in range(n):
        cfg = dict(rng.choice([base, moe]))
        for key in rng.sample(DIMS + OTHER, rng.randint(1, 3)):
            cfg[key] = rng.choice(pool)
        cases.append(dump(cfg) if rng.random() > 0.05 else dump(cfg)[: rng.randint(1, 200)])
    return cases


# the tiny valid artifact the security tests use (one copy: tests/security/untrusted_cases.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))
from untrusted_cases import KERNEL, SPEC


def _example(kernel_file: Any, spec: Any, extra: str = "") -> str:
    return (f'"""Example.\nMODEL_NAME: none\n"""\nimport os\nKERNEL_FILE = {kernel_file!r}\nVKC_COMPILE = {spec!r}\n'
            "here = os.path.dirname(os.path.abspath(__file__))\n"
            "import importlib.util\nspec = importlib.util.spec_from_file_location('k', os.path.join(here, KERNEL_FILE))\n"
            "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
            "import torch\nx = torch.ones(16)\ny = torch.empty(16)\nmod.add_one_kernel[(1,)](x, y, BLOCK=16)\n"
            "print('RESULT kernel=add_one_kernel ok=' + str(bool((y == 2).all())))\n" + extra)


def artifact_cases(rng: random.Random, n: int, outside: Path) -> list[tuple[str, str]]:
    """(file name, file text) pairs."""
    o = str(outside)
    sources = [KERNEL, f"import os\nos.system('touch {o}/{TAG}-sys')\n" + KERNEL,
               KERNEL + f"\nopen('{o}/{TAG}-mod', 'w')\n",
               KERNEL.replace("BLOCK: tl.constexpr)", f"BLOCK: tl.constexpr = open('{o}/{TAG}-def', 'w'))"),
               KERNEL.replace("offs = tl.arange(0, BLOCK)",
                              f"offs = tl.arange(0, BLOCK)\n    __builtins__['open']('{o}/{TAG}-body', 'w')"),
               "(" * 5000 + ")" * 5000, "\0", "x" * 200000, "__global__ " * 20000, "def f(:\n"]
    files = [f"{o}/{TAG}-abs.py", f"../{TAG}-up.py", f"../../{TAG}-up2.py", f"{TAG}/nested.py", ".hidden.py",
             "add_one_kernel.py", "invoke_example.py", 5, None, "a" * 300 + ".py"]
    specs = [SPEC, {}, [], "x", {"entry": "os"}, {"entry": "__builtins__", "signature": {}}, None,
             {**SPEC, "num_warps": "four"}]
    names = ["add_one_kernel", f"../{TAG}", f"/{TAG}", "a" * 300, "k\n", "x:y:z", "", 5]
    out = []
    for i in range(n):
        name: Any = "add_one_kernel" if rng.random() < 0.6 else rng.choice(names)
        extra = f"open('{o}/{TAG}-host-{i}', 'w')\n" if rng.random() < 0.3 else ""
        art: Any = {"name": name, "kernel": {
            "kernel_type": "triton" if rng.random() < 0.8 else rng.choice(["cuda", "python", 3, None]),
            "source_code": rng.choice(sources),
            "invocation_example": _example(rng.choice(files), rng.choice(specs), extra)}}
        if rng.random() < 0.1:
            art["kernel"]["extra"] = "field"
        text = json.dumps(art)
        r = rng.random()
        if r < 0.05:
            text = text.replace('"add_one_kernel"', "NaN", 1)
        elif r < 0.1:
            text = "[" * 100000 + "]" * 100000
        elif r < 0.13:
            text = text[: rng.randint(1, len(text))]
        stem = name if isinstance(name, str) and name.isidentifier() and len(name) < 100 else f"case{i}"
        out.append((f"{i:03d}/{stem}.json", text))
    return out


def run(cmd: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VKC_OFFLINE": "1"}
    env.pop("VKC_DEBUG", None)
    try:
        return subprocess.run([sys.executable, "-m", "vkc", *cmd], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, -9, str(exc.stdout or ""), f"TIMEOUT after {timeout}s")


def strays(root: Path, outside: Path, before_tmp: set[str]) -> list[str]:
    found = [str(p) for p in outside.rglob("*")]
    found += [str(root.parent / n) for n in os.listdir(root.parent) if TAG in n]
    found += [f"/tmp/{n}" for n in set(os.listdir("/tmp")) - before_tmp if TAG in n]
    return sorted(set(found))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--configs", type=int, default=40)
    ap.add_argument("--artifacts", type=int, default=40)
    ap.add_argument("--collect", type=int, default=3, help="config cases also run through vkc collect")
    ap.add_argument("--kernel", default="rms_norm_kernel")
    ap.add_argument("--run", action="store_true", help="also verify --run (sandboxed) the artifacts")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    tally: collections.Counter[str] = collections.Counter()
    codes: collections.Counter[str] = collections.Counter()
    before_tmp = set(os.listdir("/tmp"))
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp) / "work"
        outside = Path(tmp) / "outside"
        root.mkdir()
        outside.mkdir()

        def note(kind: str, p: subprocess.CompletedProcess[str]) -> None:
            tally["cases"] += 1
            codes[f"{kind}:{p.returncode}"] += 1
            if "Traceback" in p.stderr or "Traceback" in p.stdout:
                tally["tracebacks"] += 1
                print(f"TRACEBACK in {kind}: {p.stderr.strip().splitlines()[-1][:200]}", file=sys.stderr)
            if p.returncode == 70:
                tally["exit70"] += 1
                print(f"EXIT 70 in {kind}: {p.stderr.strip()[:200]}", file=sys.stderr)

        for i, text in enumerate(config_cases(rng, a.configs)):
            folder = root / f"cfg {i:03d}"
            folder.mkdir()
            (folder / "config.json").write_text(text)
            note("model-show", run(["model", "show", str(folder / "config.json"), "--offline"], root, 120))
            if i < a.collect:
                note("collect", run(["collect", a.kernel, "--model", str(folder / "config.json"), "--out",
                                     f"out{i}"], root, 600))
        arts = root / "artifacts"
        for rel, text in artifact_cases(rng, a.artifacts, outside):
            (arts / rel).parent.mkdir(parents=True, exist_ok=True)
            (arts / rel).write_text(text)
        note("verify-compile", run(["verify", "--compile", "--jobs", "2", str(arts)], root, 1800))
        if a.run:
            note("verify-run", run(["verify", "--run", "--jobs", "2", "--timeout", "120", str(arts)], root, 3600))
        bad = strays(root, outside, before_tmp)
        tally["outside"] = len(bad)
        for b in bad:
            print(f"OUTSIDE: {b}", file=sys.stderr)
    print(f"fuzz seed={a.seed}: {tally['cases']} CLI runs ({a.configs} configs, {a.artifacts} artifacts in one "
          f"verify run): tracebacks={tally['tracebacks']} exit70={tally['exit70']} outside={tally['outside']}")
    print("exit codes: " + ", ".join(f"{k}={v}" for k, v in sorted(codes.items())))
    return 0 if tally["tracebacks"] == tally["exit70"] == tally["outside"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
