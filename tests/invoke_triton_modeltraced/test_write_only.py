"""Buffers a Triton kernel only stores to need no contents (:mod:`vkc.invoke.triton.modeltraced.writeonly`),
and the step's input token ids are ids of the embedding table (:func:`...inits.init_for`)."""
from __future__ import annotations

import pytest

from vkc.invoke.triton.modeltraced.build import _init_or_unread
from vkc.invoke.triton.modeltraced.inits import Refused, StepFacts, init_for
from vkc.invoke.triton.modeltraced.writeonly import kernel_source, write_only_params
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg, TracedEvent

SRC = '''
import triton
import triton.language as tl

@triton.jit
def k(out_ptr, ids_ptr, acc_ptr, desc_ptr, helper_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ids = tl.load(ids_ptr + offs, mask=offs < n)
    ptrs = out_ptr + offs
    ptrs += 1
    tl.store(ptrs, ids, mask=offs < n)
    acc = acc_ptr + offs
    tl.store(acc, tl.load(acc) + 1)
    tl.atomic_add(desc_ptr, 1)
    _helper(helper_ptr)
'''


def test_only_pointers_used_solely_as_store_targets_are_write_only():
    assert write_only_params(SRC, "k", ["out_ptr", "ids_ptr", "acc_ptr", "desc_ptr", "helper_ptr"]) == {"out_ptr"}


def test_a_load_inside_an_assignment_is_a_read_not_a_derivation():
    src = "@triton.jit\ndef k(p, q):\n    x = tl.load(p)\n    tl.store(q, 0)\n    tl.store(p, 1)\n"
    assert write_only_params(src, "k", ["p", "q"]) == {"q"}
    gather = "@triton.jit\ndef k(out, idx):\n    tl.store(out + tl.load(idx), 1)\n"
    assert write_only_params(gather, "k", ["out", "idx"]) == {"out"}


def test_unparsable_or_ambiguous_sources_give_nothing():
    assert write_only_params("def k(:", "k", ["p"]) == frozenset()
    two = "def k(p):\n    tl.store(p, 1)\ndef k(p):\n    tl.store(p, 1)\n"
    assert write_only_params(two, "k", ["p"]) == frozenset()


def test_kernel_source_reads_the_module_file(tmp_path):
    (tmp_path / "vllm" / "ops").mkdir(parents=True)
    (tmp_path / "vllm" / "ops" / "m.py").write_text(SRC)
    assert kernel_source(tmp_path, "vllm.ops.m:k") == SRC
    assert kernel_source(tmp_path, "vllm.ops.missing:k") is None


def _t(base: str, producer: str, dtype: str = "int32", shape: tuple[int, ...] = (64,)) -> TensorArg:
    return TensorArg(dtype, shape, (1,) * len(shape), 0, 4, base, 4 * 64 * 2048, producer)


def _facts(*events: TracedEvent, source: str | None = None) -> StepFacts:
    return StepFacts(StepTrace(StepSpec("decode", 64, 4096), 64, events, 0.0), 1024, 16, kernel_source=source)


def test_an_unread_buffer_of_unknown_contents_is_empty_and_the_header_says_why():
    out = _t("s1", "unknown")
    ev = TracedEvent(0, "triton", "m:k", None, None, (("out_ptr", out),), grid=(1,))
    with pytest.raises(Refused):
        _init_or_unread("out_ptr", out, ev, _facts(ev))
    facts = _facts(ev, source=SRC)
    assert _init_or_unread("out_ptr", out, ev, facts) == InitSpec("empty")
    assert any("only stores to it" in n for n in facts.notes)


BRANCHY = """
@triton.jit
def k(count_ptr, n, SINGLE: tl.constexpr):
    if SINGLE:
        tl.store(count_ptr, n)
    else:
        tl.atomic_add(count_ptr, n)
"""


def test_constexpr_branches_the_launch_does_not_take_are_pruned():
    assert write_only_params(BRANCHY, "k", ["count_ptr", "n"], {"SINGLE": True}) == {"count_ptr"}
    assert write_only_params(BRANCHY, "k", ["count_ptr", "n"], {"SINGLE": False}) == frozenset()
    assert write_only_params(BRANCHY, "k", ["count_ptr", "n"]) == frozenset()


def test_input_token_ids_are_below_the_embedding_rows():
    ids = _t("s2", "input:input_ids")
    table = TensorArg("bfloat16", (129280, 7168), (7168, 1), 0, 2, "s3", 129280 * 7168 * 2,
                      "weight:model.embed_tokens.weight")
    ev = TracedEvent(1, "triton", "m:embed", None, None, (("ids_ptr", ids), ("table_ptr", table)), grid=(64,))
    assert init_for("ids_ptr", ids, ev, _facts(ev)) == InitSpec("randint", (0, 129280))
    lone = TracedEvent(1, "triton", "m:embed", None, None, (("ids_ptr", ids),), grid=(64,))
    with pytest.raises(Refused, match="no embedding table"):
        init_for("ids_ptr", ids, lone, _facts(lone))


CLASSES = '''
import triton
import triton.language as tl

class A:
    @staticmethod
    @triton.jit
    def kernel(out_ptr, x_ptr):
        tl.store(out_ptr, tl.load(x_ptr))

class B:
    @staticmethod
    @triton.jit
    def kernel(out_ptr, lens_ptr):
        tl.store(lens_ptr, tl.load(out_ptr))
'''


def test_a_static_method_kernel_is_found_by_its_qualified_name():
    """DeepSeek-V4's kernel classes (VllmTritonJitKernel) each define ``kernel``: the class picks it."""
    assert write_only_params(CLASSES, "A.kernel", ["out_ptr", "x_ptr"]) == frozenset({"out_ptr"})
    assert write_only_params(CLASSES, "B.kernel", ["out_ptr", "lens_ptr"]) == frozenset({"lens_ptr"})
    assert write_only_params(CLASSES, "kernel", ["out_ptr"]) == frozenset()     # ambiguous: no answer


def test_a_write_only_view_takes_the_contents_of_the_other_views():
    from vkc.invoke.triton.modeltraced.build import _pick_init

    a = TensorArg("int32", (4,), (1,), 0, 4, "s0", 64, "event:0")
    b = TensorArg("int32", (4,), (1,), 4, 4, "s0", 64, "event:0")
    got = _pick_init([("indices", a, InitSpec("const", (-1,))), ("lens", b, InitSpec("empty"))])
    assert got == InitSpec("const", (-1,))


def test_a_kv_storage_of_float_rows_and_raw_bytes_takes_the_float_fill():
    """Step5's KV storage: bf16 ring rows and the uint8 (fp8) summaries beside them."""
    from vkc.invoke.triton.modeltraced.build import _pick_init

    mean = TensorArg("uint8", (4, 256), (256, 1), 0, 1, "kv", 8192, "kv_cache:l0")
    ring = TensorArg("bfloat16", (4, 512), (512, 1), 0, 2, "kv", 8192, "kv_cache:l0")
    got = _pick_init([("Mean", mean, InitSpec("randint", (0, 256))), ("Ring", ring, InitSpec("randn"))], kv=True)
    assert got == InitSpec("randn_as", ("bfloat16",))     # bf16 values, whichever view's dtype the buffer takes
    with pytest.raises(Refused):      # not a KV cache: index data and floats in one buffer stay refused
        _pick_init([("Mean", mean, InitSpec("randint", (0, 256))), ("Ring", ring, InitSpec("randn"))])


def test_a_parameter_a_pruned_branch_alone_reads_is_unused_at_that_launch():
    src = '''
import triton
import triton.language as tl

@triton.jit
def k(out_ptr, left_ptr, HAS_IMAGE: tl.constexpr):
    x = 0
    if HAS_IMAGE:
        x = tl.load(left_ptr)
    tl.store(out_ptr, x)
'''
    assert write_only_params(src, "k", ["out_ptr", "left_ptr"], {"HAS_IMAGE": False}) == frozenset({"out_ptr"})
    assert write_only_params(src, "k", ["out_ptr", "left_ptr"], {"HAS_IMAGE": False}, unused=True) == frozenset(
        {"out_ptr", "left_ptr"})
    assert write_only_params(src, "k", ["out_ptr", "left_ptr"], {"HAS_IMAGE": True}, unused=True) == frozenset(
        {"out_ptr"})
