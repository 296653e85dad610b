"""The extraction cache (issue 15: "a failed or interrupted invocation retries without re-extracting").

On the real vLLM sdist (``vllm_tree``), in process: the language extractors are wrapped to count
their calls (or to fail if called), and the cache lives in ``tmp_path`` (``vkc.extract.cache.root``);
the source and index caches are the session's.  Also: a changed extractor or tree misses, a damaged
entry heals, a cache hit is the very same record and writes the very same artifact bytes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import vkc
import vkc.extract.cuda
import vkc.extract.triton
from vkc.errors import ExtractionError, ModelError, NotApplicableError
from vkc.extract import cache as ec
from vkc.extract import extract, extract_uncached
from vkc.index import build_index, lookup
from vkc.pipeline import collect
from vkc.records import Extraction, KernelIndex, SourceTree

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
TRITON = "_gelu_and_mul_sparse_kernel"         # a Triton kernel without a recipe (no trace subprocess)
CUDA = "rms_norm_kernel"
MOE = "fused_moe_kernel"                       # extracted, then not applicable to a dense model


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "extractions"
    monkeypatch.setattr(ec, "root", lambda: root)
    monkeypatch.delenv(ec.ENV_OFF, raising=False)
    return root


@pytest.fixture(scope="module")
def index(vllm_tree: SourceTree) -> KernelIndex:
    return build_index(vllm_tree)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Counts calls of the Triton and CUDA extractors; ``state["fail"] = True`` makes a call fail the test."""
    state: dict[str, Any] = {"triton": 0, "cuda": 0, "fail": False}

    def wrap(lang: str, real: Callable[..., Extraction]) -> Callable[..., Extraction]:
        def run(tree: SourceTree, kernel: Any) -> Extraction:
            if state["fail"]:
                raise AssertionError(f"the {lang} extractor ran for {kernel.qualified}: the cache was not used")
            state[lang] += 1
            return real(tree, kernel)
        return run
    monkeypatch.setattr(vkc.extract.triton, "extract_triton", wrap("triton", vkc.extract.triton.extract_triton))
    monkeypatch.setattr(vkc.extract.cuda, "extract_cuda", wrap("cuda", vkc.extract.cuda.extract_cuda))
    return state


def _strict_same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (a tuple is not a list) and the same dict order."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(_strict_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_strict_same(x, y) for x, y in zip(a.items(), b.items(), strict=True))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_strict_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json")) if root.is_dir() else []


def test_failed_invocation_retries_without_extracting(index: KernelIndex, cache_root: Path, calls: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """The invocation fails after the extraction (a MoE kernel at a dense model; a config path with a
    typo): the retry, and the fixed command, run no extractor."""
    out = tmp_path / "out"
    with pytest.raises(NotApplicableError):
        collect(MOE, model=LLAMA, out_dir=out, index=index)
    assert calls["triton"] == 1 and len(_files(cache_root)) == 1
    with pytest.raises(ModelError):
        collect(TRITON, model=str(tmp_path / "no-such" / "config.json"), out_dir=out, index=index)
    assert calls["triton"] == 2 and len(_files(cache_root)) == 2
    calls["fail"] = True
    with pytest.raises(NotApplicableError):                 # the same failure again, from the cache
        collect(MOE, model=LLAMA, out_dir=out, index=index)
    hit = collect(TRITON, model=LLAMA, out_dir=out, index=index)
    hit_bytes = Path(hit.path).read_bytes()
    calls["fail"] = False
    with pytest.MonkeyPatch.context() as mp:                # (d) the same bytes from a cold extraction
        mp.setenv(ec.ENV_OFF, "1")
        cold = collect(TRITON, model=LLAMA, out_dir=out, index=index)
    assert calls["triton"] == 3 and Path(cold.path).read_bytes() == hit_bytes and cold.path == hit.path
    assert len(_files(cache_root)) == 2                     # off: nothing written


@pytest.mark.parametrize("name", [TRITON, CUDA, "kernel_unified_attention"])
def test_hit_is_the_same_record(index: KernelIndex, cache_root: Path, calls: dict[str, Any], name: str) -> None:
    kernel = lookup(index, name)
    fresh = extract_uncached(index.tree, kernel)
    assert ec.ExtractionCache(index.tree).store(kernel, fresh)
    calls["fail"] = True
    hit = extract(index.tree, kernel, name=name, cache=True)
    assert _strict_same(hit, dataclasses.replace(fresh, facts={**fresh.facts, "name": name}))


def test_cuda_artifact_bytes_cold_and_hit(index: KernelIndex, cache_root: Path, calls: dict[str, Any],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    first = Path(collect(CUDA, model=LLAMA, out_dir=out, index=index).path).read_bytes()   # cold, stored
    calls["fail"] = True
    assert Path(collect(CUDA, model=LLAMA, out_dir=out, index=index).path).read_bytes() == first
    calls["fail"] = False
    monkeypatch.setenv(ec.ENV_OFF, "1")
    assert Path(collect(CUDA, model=LLAMA, out_dir=out, index=index).path).read_bytes() == first
    assert calls["cuda"] == 2


def test_extraction_error_is_cached_other_errors_are_not(index: KernelIndex, cache_root: Path,
                                                         calls: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    rocm = next(k for k in index.kernels if k.rocm_only)
    with pytest.raises(ExtractionError) as first:
        extract(index.tree, rocm, cache=True)
    calls["fail"] = True
    with pytest.raises(ExtractionError) as again:
        extract(index.tree, rocm, cache=True)
    assert (str(again.value), again.value.hint) == (str(first.value), first.value.hint) and calls["cuda"] == 1
    kernel = lookup(index, TRITON)

    def bug(tree: SourceTree, k: Any) -> Extraction:
        calls["bugs"] = calls.get("bugs", 0) + 1
        raise RuntimeError("a bug in vkc")
    monkeypatch.setattr(vkc.extract.triton, "extract_triton", bug)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            extract(index.tree, kernel, cache=True)
    assert calls["bugs"] == 2 and len(_files(cache_root)) == 1


def test_changed_extractor_misses(index: KernelIndex, cache_root: Path, calls: dict[str, Any], tmp_path: Path) -> None:
    """A new vkc version or an edited extractor file gives a new group: the old entry is not read."""
    kernel = lookup(index, TRITON)
    extract(index.tree, kernel, cache=True)
    extract(index.tree, kernel, cache=True)
    assert calls["triton"] == 1
    part = tmp_path / "extractor_part.py"           # stands for one more source file of the extractor
    part.write_text("X = 1\n")
    real_files = ec.digest_files
    ec.extractor_digest.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ec, "digest_files", lambda: [*real_files(), part])
            extract(index.tree, kernel, cache=True)
            assert calls["triton"] == 2
            part.write_text("X = 2\n")             # the extractor's source changed
            ec.extractor_digest.cache_clear()
            extract(index.tree, kernel, cache=True)
            assert calls["triton"] == 3
            mp.setattr(vkc, "__version__", vkc.__version__ + ".post1")
            ec.extractor_digest.cache_clear()
            extract(index.tree, kernel, cache=True)
            assert calls["triton"] == 4
    finally:
        ec.extractor_digest.cache_clear()
    extract(index.tree, kernel, cache=True)         # back to the real extractor: its entry is still there
    assert calls["triton"] == 4 and len({p.parent.name for p in _files(cache_root)}) == 4


def test_changed_tree_or_entry_misses(index: KernelIndex, cache_root: Path, calls: dict[str, Any]) -> None:
    kernel = lookup(index, TRITON)
    tc = ec.ExtractionCache(index.tree)
    other_sdist = ec.ExtractionCache(dataclasses.replace(index.tree, sha256="0" * 64))
    assert tc.group != other_sdist.group
    moved = dataclasses.replace(kernel, line=kernel.line + 1, end_line=kernel.end_line + 1)
    assert tc.key(moved) != tc.key(kernel)
    extract(index.tree, kernel, cache=tc)
    assert tc.load(kernel) is not None and other_sdist.load(kernel) is None and tc.load(moved) is None


LOCAL_KERNEL = '''import triton
import triton.language as tl

SCALE = 2


@triton.jit
def scale_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * SCALE, mask=offs < n)
'''


def _local_tree(root: Path) -> SourceTree:
    for rel, text in {"vllm/__init__.py": "", "vllm/ops/__init__.py": "", "vllm/ops/k.py": LOCAL_KERNEL,
                      "vllm/ops/other.py": "Y = 1\n", "csrc/k.cu": "__global__ void fill_one(float* x) { x[0] = 1; }\n"
                      }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return SourceTree(root=root.resolve(), version="local", origin=str(root.resolve()))


def test_local_tree_edit_misses(tmp_path: Path, cache_root: Path, calls: dict[str, Any]) -> None:
    """A local tree (no sdist): an edit of the kernel's file, or of another file of the tree, misses."""
    tree = _local_tree(tmp_path / "tree")
    kernel = lookup(build_index(tree, use_cache=False), "scale_kernel")
    first = extract(tree, kernel, cache=True)
    extract(tree, kernel, cache=True)
    assert calls["triton"] == 1
    (tree.root / "vllm/ops/k.py").write_text(LOCAL_KERNEL.replace("SCALE = 2", "SCALE = 3"))
    from vkc.extract.triton.extractor import _PROGRAMS
    _PROGRAMS.pop(str(tree.root), None)     # the extractor parses a tree once per process: as a new process
    changed = extract(tree, kernel, cache=True)
    assert calls["triton"] == 2 and "tl.constexpr(3)" in changed.source_code and "tl.constexpr(2)" in first.source_code
    (tree.root / "vllm/ops/other.py").write_text("Y = 22\n")
    ec.group_key.cache_clear()                  # the tree's part of the key is also once per process
    extract(tree, kernel, cache=True)
    assert calls["triton"] == 3


def _damage(path: Path, how: str) -> None:
    text = path.read_text()
    head, _, body = text.partition("\n")
    if how == "truncated":
        path.write_text(text[: len(text) // 2])
    elif how == "empty":
        path.write_text("")
    elif how == "garbage":
        path.write_bytes(b"\xff\xfe not json\n\x00")
    elif how == "edited":                        # the body no longer has the sha256 its header names
        path.write_text(head + "\n" + body.replace("tl.", "tx.", 1))
    elif how == "wrong-head":
        path.write_text(json.dumps([1, 2]) + "\n" + body)
    else:                                        # a wrong-shaped body under a matching header
        data = json.loads(body)
        if how == "shape":
            data["handoff"].pop("arg_order")
        else:
            data["facts"] = {"t": []}
        new = json.dumps(data)
        h = json.loads(head)
        h["sha256"] = hashlib.sha256(new.encode()).hexdigest()
        path.write_text(json.dumps(h) + "\n" + new)


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "edited", "wrong-head", "shape", "facts-type"])
def test_damaged_entry_heals(index: KernelIndex, cache_root: Path, calls: dict[str, Any], how: str) -> None:
    kernel = lookup(index, TRITON)
    good = extract(index.tree, kernel, cache=True)
    (path,) = _files(cache_root)
    sound = path.read_bytes()
    _damage(path, how)
    assert ec.ExtractionCache(index.tree).load(kernel) is None
    assert _strict_same(extract(index.tree, kernel, cache=True), good) and calls["triton"] == 2
    assert path.read_bytes() == sound                     # rewritten
    calls["fail"] = True
    assert _strict_same(extract(index.tree, kernel, cache=True), good)


def test_unwritable_cache_costs_only_the_cache(index: KernelIndex, tmp_path: Path, calls: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(ec, "root", lambda: blocker / "extractions")     # mkdir fails: NotADirectoryError
    kernel = lookup(index, TRITON)
    assert not ec.ExtractionCache(index.tree).store(kernel, extract_uncached(index.tree, kernel))
    first, second = (extract(index.tree, kernel, cache=True) for _ in range(2))
    assert first == second and calls["triton"] == 3


def test_runtime_fallback_without_an_answer_caches_nothing(index: KernelIndex, cache_root: Path,
                                                           calls: dict[str, Any]) -> None:
    from vkc.extract.triton.extractor import program_for
    kernel = lookup(index, TRITON)
    fallback = program_for(index.tree).fallback
    assert isinstance(fallback.cache, dict)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(fallback.cache, ("vllm.some_module", "SOME_VALUE"), None)   # as a timed-out import leaves it
        extract(index.tree, kernel, cache=True)
        assert _files(cache_root) == [] and calls["triton"] == 1
    extract(index.tree, kernel, cache=True)
    assert len(_files(cache_root)) == 1


def test_record_form_is_exact_or_refused(index: KernelIndex, cache_root: Path) -> None:
    kernel = lookup(index, TRITON)
    base = extract_uncached(index.tree, kernel)
    odd = {"tuple": (1, (2.5, "x"), [None, True]), "int keys": {1: "a", (2, 3): [()]}, "inf": float("-inf"),
           "order": {"b": 1, "a": 2}, "empty": {}, "tag-like": {"t": [1], "d": "x"}, "unicode": "\udcff é"}
    tc = ec.ExtractionCache(index.tree)
    assert tc.store(kernel, dataclasses.replace(base, facts=odd))
    assert _strict_same(tc.load(kernel), dataclasses.replace(base, facts=odd))
    other = lookup(index, CUDA)
    cuda = extract_uncached(index.tree, other)
    assert not tc.store(other, dataclasses.replace(cuda, facts={"a set": {1, 2}}))   # no exact JSON form
    assert tc.load(other) is None
    assert not tc.store(other, dataclasses.replace(cuda, kernel=kernel))            # another kernel's record


def test_digest_covers_what_extraction_imports() -> None:
    """Every vkc module the extract stage imports (statically, transitively; ``vkc.source`` only
    gives the cache folder and ``vkc.atomic`` only writes) feeds the extractor digest: a new import
    of another stage from the extractor fails here until it is hashed too."""
    import ast
    src = Path(vkc.__file__).resolve().parent.parent
    hashed = {p.resolve() for p in ec.digest_files()}

    def file_of(mod: str) -> Path | None:
        p = src.joinpath(*mod.split("."))
        return next((f for f in (p / "__init__.py", p.with_suffix(".py")) if f.is_file()), None)

    seen: set[str] = set()
    todo = ["vkc.extract"]
    while todo:
        mod = todo.pop()
        path = file_of(mod)
        if mod in seen or mod in ("vkc", "vkc.source", "vkc.atomic") or path is None:
            continue
        seen.add(mod)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("vkc.")]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vkc") and not node.level:
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    missing = sorted(m for m in seen if file_of(m) not in hashed)   # type: ignore[comparison-overlap]
    assert len(seen) > 40 and not missing, f"extractor digest misses {missing}"
