"""Issue 12: the generic (untraced) launch fills index-like buffers from a range derived from their use
(:mod:`vkc.invoke.triton.untraced.indexinit`), one test per rule, checked against the buffer scan."""
from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

from vkc.invoke.triton.plan import ZEROS, Buffer, InitSpec, LaunchConfig, Scalar, flat_view
from vkc.invoke.triton.recipes.base import normalize_init
from vkc.invoke.triton.untraced.indexinit import index_inits, index_kind, reaches
from vkc.invoke.triton.untraced.sigtypes import analyze

ROOT = Path(__file__).resolve().parents[2]
HEAD = "import triton\nimport triton.language as tl\n\n"
NUMEL = 1 << 14

_spec = importlib.util.spec_from_file_location("buffer_specs_scan", ROOT / "bench" / "buffer_specs.py")
assert _spec and _spec.loader
scan = importlib.util.module_from_spec(_spec)
sys.modules["buffer_specs_scan"] = scan
_spec.loader.exec_module(scan)

GATHER = HEAD + textwrap.dedent("""
    @triton.jit
    def k(src_ptr, out_ptr, token_indices_ptr, cu_seqlens_ptr, seq_lens_ptr, block_table_ptr, slot_mapping_ptr,
          expert_ids_ptr, kv_ptrs_ptr, row_stride, n, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        o = tl.arange(0, BLOCK)
        tok = tl.load(token_indices_ptr + pid)
        start = tl.load(cu_seqlens_ptr + pid)
        length = tl.load(seq_lens_ptr + pid)
        blk = tl.load(block_table_ptr + pid)
        slot = tl.load(slot_mapping_ptr + pid)
        e = tl.load(expert_ids_ptr + pid)
        base = tl.load(kv_ptrs_ptr + pid).to(tl.pointer_type(tl.bfloat16))
        x = tl.load(src_ptr + tok * row_stride + o, mask=o < length)
        y = tl.load(base + (start + o) * BLOCK + blk * 64 + slot + e * row_stride)
        tl.store(out_ptr + pid * BLOCK + o, x + y)
""")


def _cfg(src: str, entry: str = "k", grid: tuple[int, ...] = (8,), scalars: dict | None = None) -> tuple:
    params = analyze(src, entry)
    ptrs = [p for p in params if p.kind == "ptr"]
    bufs = tuple(Buffer(p.name, (NUMEL,), p.dtype or "bfloat16",
                        ZEROS if (p.dtype or "").startswith("int") else InitSpec("randn")) for p in ptrs)
    args = tuple([flat_view(p.name, NUMEL, p.dtype or "bfloat16") for p in ptrs] +
                 [Scalar(n, v) for n, v in (scalars or {}).items()])
    cfg = LaunchConfig(grid=grid, num_warps=4, num_stages=3, options={}, constexprs={"BLOCK": 16}, buffers=bufs,
                       args=args, live_bytes=0, flops=None, bytes=0.0, shapes={"numel_per_pointer": NUMEL})
    return params, cfg


def _inits(src: str, num_experts: int | None = 8, **kw) -> dict[str, tuple]:
    params, cfg = _cfg(src, **kw)
    out = index_inits(src, "k", params, cfg, num_experts, [])
    return {b.name: b.init.to_literal() for b in out.buffers}


def test_kinds_by_use_and_name():
    kinds = {p.name: index_kind(p, addresses=p.name == "kv_ptrs_ptr") for p in analyze(GATHER, "k")}
    assert kinds == {"src_ptr": None, "out_ptr": None, "token_indices_ptr": "index", "cu_seqlens_ptr": "cumulative",
                     "seq_lens_ptr": "lengths", "block_table_ptr": "table", "slot_mapping_ptr": "slots",
                     "expert_ids_ptr": "experts", "kv_ptrs_ptr": "pointers", "row_stride": None, "n": None,
                     "BLOCK": None}


def test_reach_follows_the_factor_an_index_is_scaled_by():
    _params, cfg = _cfg(GATHER, scalars={"row_stride": 256, "n": 4})
    far = reaches(GATHER, "k", cfg, NUMEL)
    assert far["token_indices_ptr"] == NUMEL // (4 * 256)        # tok * row_stride
    assert far["block_table_ptr"] == NUMEL // (4 * 64)           # blk * 64 (a literal)
    assert far["slot_mapping_ptr"] == NUMEL // 4                 # slot, unscaled
    assert far["cu_seqlens_ptr"] == NUMEL // (4 * 16)            # (start + o) * BLOCK
    assert "seq_lens_ptr" not in far and far["*"] == NUMEL // (4 * 256)   # a bound, not an offset: the largest scalar


def test_each_rule_gives_a_valid_range():
    got = _inits(GATHER, scalars={"row_stride": 256, "n": 4})
    assert got["token_indices_ptr"] == ("randint", 0, 16)
    # sorted offsets of equal segments; programs 0..8 read at most 9 entries: 9 * seg <= reach
    seg = min(128, (NUMEL // (4 * 16)) // 9)
    assert got["cu_seqlens_ptr"] == ("arange", 0, seg) and 9 * seg <= NUMEL // (4 * 16)
    assert got["seq_lens_ptr"][0] == "const" and 9 * got["seq_lens_ptr"][1] <= 16
    assert got["block_table_ptr"] == ("block_table", 64)
    assert got["slot_mapping_ptr"] == ("slot_mapping", NUMEL // 4)
    assert got["expert_ids_ptr"] == ("randint", 0, 8)           # below the expert count
    assert got["src_ptr"] == ("randn",) and got["out_ptr"] == ("randn",)
    for spec in got.values():
        normalize_init(spec)                                     # every kind is one the template knows


def test_expert_ids_without_experts_are_zero_only_through_a_range():
    got = _inits(GATHER, num_experts=None, scalars={"row_stride": 256})
    assert got["expert_ids_ptr"] == ("randint", 0, 1)


def test_pointer_table_points_at_real_allocations_and_is_noted():
    params, cfg = _cfg(GATHER, scalars={"row_stride": 256})
    notes: list[str] = []
    out = index_inits(GATHER, "k", params, cfg, 8, notes)
    init = out.buffer("kv_ptrs_ptr").init
    assert (init.kind, init.params) == ("pointer_table", (2, cfg.shapes["numel_per_pointer"] * 8))
    assert any("kv_ptrs_ptr" in n and "zero-filled allocations" in n for n in notes)


def test_the_scan_accepts_every_index_buffer_it_fills():
    params, cfg = _cfg(GATHER, scalars={"row_stride": 256})
    out = index_inits(GATHER, "k", params, cfg, 8, [])
    found = set()
    for b in out.buffers:
        spec = b.init.to_literal()
        why = scan._classify(b.name, b.dtype, spec[0], integer=b.dtype in scan._INT_TRITON,
                             ranged=spec[0] in scan.RANGED, output=spec[0] in scan.OUTPUT_KINDS,
                             pointer_ok=spec[0] in scan.POINTER_KINDS)
        if why:
            found.add((b.name, why))
    assert found == set()                                    # the pointer table too: real allocations


def test_index_named_int_data_and_non_zero_buffers_are_left_alone():
    src = HEAD + textwrap.dedent("""
        @triton.jit
        def k(mask_ptr, out_ptr, BLOCK: tl.constexpr):
            o = tl.arange(0, BLOCK)
            m = tl.load(mask_ptr + o)
            tl.store(out_ptr + o, (m >> 1) & 1)
    """)
    got = _inits(src)
    assert got["mask_ptr"] == ("zeros",)


def test_locks_and_counters_keep_their_zero_start():
    src = HEAD + textwrap.dedent("""
        @triton.jit
        def k(x_ptr, locks_ptr, out_ptr, BLOCK: tl.constexpr):
            o = tl.arange(0, BLOCK)
            n = tl.load(locks_ptr + 0)
            tl.store(out_ptr + n * BLOCK + o, tl.load(x_ptr + o))
            tl.atomic_add(locks_ptr + 0, 1)
    """)
    assert _inits(src)["locks_ptr"] == ("zeros",)


def test_int64_output_is_not_a_pointer_table():
    # int64 because of the stored cast, never cast to a pointer: an output, not a table of addresses
    src = HEAD + textwrap.dedent("""
        @triton.jit
        def k(send_ids_ptr, src_ids_ptr, tables, BLOCK: tl.constexpr):
            o = tl.arange(0, BLOCK)
            ids = tl.load(src_ids_ptr + o)
            t = tl.load(tables + o).to(tl.pointer_type(tl.float32))
            tl.store(send_ids_ptr + o, ids.to(tl.int64))
            tl.store(t, 1.0)
    """)
    params, cfg = _cfg(src)
    notes: list[str] = []
    out = index_inits(src, "k", params, cfg, 8, notes)
    assert out.buffer("send_ids_ptr").init.kind == "randint"
    numel = cfg.shapes["numel_per_pointer"]
    assert out.buffer("tables").init.kind == "pointer_table" and out.buffer("tables").init.params == (2, numel * 8)
    assert notes == [(f"pointer tables ['tables'] hold the addresses of 2 zero-filled allocations of {numel * 8} "
                      "bytes each (synthesized: not the tensors vLLM's caller points them at)")]


def test_the_template_builds_a_pointer_table_of_real_allocations():
    """The script's ``pointer_table`` init (templates/invoke.py.j2): entries are live allocations' addresses."""
    import math
    import re
    from importlib import resources

    import torch

    text = resources.files("vkc.invoke.triton").joinpath("templates/invoke.py.j2").read_text()
    code = re.search(r"^_POINTER_TARGETS = .*?(?=^def _view)", text, re.M | re.S).group(0)
    ns: dict = {"torch": torch, "math": math}
    exec(compile(code, "invoke.py.j2", "exec"), ns)  # noqa: S102 -- vkc's own template code, no input
    table = ns["_init_tensor"]((5,), "int64", ("pointer_table", 2, 64), "cpu")
    targets = ns["_POINTER_TARGETS"]
    assert len(targets) == 2 and all(t.numel() == 64 and not t.any() for t in targets)
    assert table.tolist() == [targets[i % 2].data_ptr() for i in range(5)]
