"""Contents of a storage vLLM allocated empty that an earlier launch of the step wrote before the launch
being reproduced reads it (a rule of :func:`vkc.invoke.triton.modeltraced.inits.init_for`): the earlier
kernel's fixed rule (:data:`_WRITTEN`: the rejection sampler's counts, the n-gram scan), a rule computing it
from the contents of that kernel's inputs (:data:`_COMPUTED`: the Mamba state-index gather), else a
refusal for an integer storage and random data for a float one."""
from __future__ import annotations

from collections.abc import Sequence

from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import Refused
from .initbase import is_int as _is_int
from .mamba_align import MAMBA_ALIGN, Init, mamba_align_out

__all__ = ["earlier_writers", "float_output", "written_before"]

# outputs of an earlier launch of the step, read by this one: what vLLM's earlier kernel leaves there
# (kernel leaf, its parameter) -> the contents; vllm/v1/worker/gpu/spec_decode/rejection_sampler_utils.py
_WRITTEN: dict[tuple[str, str], InitSpec] = {
    # _rejection_kernel stores each request's accepted draft count (0..num_draft_tokens); 0 (every draft
    # rejected) is one state it writes, and keeps start + num_sampled inside the request's logits
    ("_rejection_kernel", "num_sampled_ptr"): InitSpec("const", (0,)),
    # the step index of the first rejection (0..num_draft_tokens): 0 is the same state
    ("_rejection_kernel", "rejected_steps_ptr"): InitSpec("const", (0,)),
    # sampled token ids: token 0 is inside every vocabulary
    ("_rejection_kernel", "sampled_ptr"): InitSpec("const", (0,)),
    # vllm/v1/worker/gpu/sample/logprob.py: each row's sampled token, then its top-k / requested ids
    ("_fill_logprob_token_ids_kernel", "out_token_ids_ptr"): InitSpec("const", (0,)),
    # vllm/v1/worker/gpu/input_batch.py: a request still in chunked prefill gets num_sampled = 0 and
    # num_rejected = 0 (both rules above keep num_sampled 0, so the pair is one state vLLM writes)
    ("_get_num_sampled_and_rejected_kernel", "num_rejected_ptr"): InitSpec("const", (0,)),
    ("_get_num_sampled_and_rejected_kernel", "num_sampled_ptr"): InitSpec("const", (0,)),
    # vllm/v1/worker/gpu/spec_decode/ngram/speculator.py: a block's best packed (n, pos) score, 0 where
    # it has no match (ineligible rows and blocks past the last candidate write 0)
    ("_ngram_scan_kernel", "scratch_ptr"): InitSpec("const", (0,)),
}
# (kernel leaf, its parameter) -> a rule computing what it wrote from the contents of its inputs
_COMPUTED = {(MAMBA_ALIGN, "out_ptr"): mamba_align_out}
# an earlier kernel's per-block argmax over the vocabulary is a token id: 0 is inside every vocabulary
_TOKEN_ID_SUFFIXES = ("argmax_ptr",)


def float_output(param: str) -> InitSpec | None:
    """A float a vLLM kernel made: a block's sum of exp(x - block max) is at least 1 (its max term)."""
    if "sumexp" in param.lower():
        return InitSpec("uniform", (1.0, 4.0))
    return None


def earlier_writers(a: TensorArg, launch: TracedEvent, events: Sequence[TracedEvent]) -> list[tuple[TracedEvent, str]]:
    """The launches before ``launch`` in the step that took ``a``'s storage (vLLM allocated it empty, so
    one of them wrote it), latest first, each with its parameter name; [] when this launch is the first."""
    at = next((i for i, e in enumerate(events) if e is launch or e.index == launch.index), None)
    if at is None:
        return []
    return [(ev, name) for ev in reversed(events[:at]) if ev.kind == "triton"
            for name, t in ev.tensors() if t.base == a.base]


def written_before(param: str, a: TensorArg, earlier: list[tuple[TracedEvent, str]], init: Init,
                   notes: list[str]) -> InitSpec:
    """The contents the earlier launches leave: the rule of the latest one that has a rule."""
    for ev, name in earlier:
        rule = _WRITTEN.get((ev.name.rsplit(":", 1)[-1], name))
        if rule is not None:
            return rule
        computed = _COMPUTED.get((ev.name.rsplit(":", 1)[-1], name))
        if computed is not None:      # a metadata kernel's output, from the contents of its inputs
            spec = computed(ev, a, init)
            note = f"{param}: what {ev.name.rsplit(':', 1)[-1]} wrote, from the contents of its inputs ({spec.kind})"
            if note not in notes:
                notes.append(note)
            return spec
        if _is_int(a.dtype) and name.endswith(_TOKEN_ID_SUFFIXES):
            return InitSpec("const", (0,))
    if not _is_int(a.dtype):
        return float_output(param) or InitSpec("randn")
    ev, name = earlier[0]
    raise Refused(f"{param}: written by an earlier launch of the step ({ev.name.rsplit(':', 1)[-1]}, as {name}) "
                  "before this one reads it; vkc has no rule for that kernel's output")
