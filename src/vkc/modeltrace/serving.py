"""Serving features of the traced step, worker side: vLLM's own sampler after the model forward.

Runs only inside the model-trace worker (imports vLLM).  What it mirrors (each a checklist
feature step, :data:`vkc.modeltrace.checklist.FEATURE_STEPS`, fingerprinted):

* ``vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.load_model`` -- the V2 model runner (0.33.0's
  default, ``VllmConfig.use_v2_model_runner``) builds ``RequestState``, ``InputBuffers`` and
  ``Sampler`` with these arguments;
* ``GPUModelRunner.add_requests`` -- ``req_states.add_request`` + ``sampler.add_request`` per new
  request, then ``apply_staged_writes`` (the penalties' prompt ``bincount``, the staged-write kernel);
* ``GPUModelRunner._dummy_sampler_run`` -- ``InputBatch.make_dummy(num_reqs, num_tokens, ...)`` and
  ``sampler(logits, input_batch)``, the batch vLLM itself samples during its warm-up;
* ``vllm/v1/worker/gpu/buffer_utils.py: UvaBuffer.__init__`` -- on an H100 host pinned memory is
  available and a UVA buffer is a device view of it: here a CPU array plus a ``meta`` view.

The sampling parameters are a documented mix (:mod:`vkc.modeltrace.mixes`; by default
:data:`SERVING_MIX`, the same for every request; ``state["mix"]`` names another, whose extra runner
steps are :mod:`vkc.modeltrace.mix_worker`'s).  With ``bitmask`` the step first applies ``StructuredOutputsWorker.apply_grammar_bitmask``
(``GPUModelRunner.sample``'s order), every request under a grammar.  Events go to the step's event
list with ``layer`` None and ``module`` ``"sampler"`` (the per-step sampling), ``"sampler.bitmask"``
or ``"sampler.admit"`` (request admission: recorded in the prefill step, where vLLM admits the
requests it prefills; a decode step's requests were admitted steps before).  :func:`host_contents`
returns what the runner's host side wrote into the index and parameter buffers (per-request
sampling parameters, lengths, the batch's request slots, the grammar bitmask), by storage id, for
the artifacts' buffer contents (:mod:`vkc.modeltrace.contents`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .mixes import DEFAULT_MIX, SERVING_MIX, sampling_params

__all__ = ["FEATURE_STORAGE_OFFSET", "SERVING_MIX", "FeatureStorages", "feature_storages", "host_contents",
           "run_features", "sampler_state"]


FEATURE_STORAGE_OFFSET = 1_000_000


class FeatureStorages(dict):  # type: ignore[type-arg]
    """The recorder's storage table while a feature runs: storages the feature names are its own,
    numbered ``s1000000`` on, so the forward's storage ids (``s<n>``, counted from the table's
    length) are the plain trace's in every step; look-ups fall through to the forward's table."""

    def __init__(self, forward: dict[int, Any], own: dict[int, Any]) -> None:
        super().__init__(own)
        self.forward = forward

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.forward

    def __getitem__(self, key: int) -> Any:
        return dict.__getitem__(self, key) if dict.__contains__(self, key) else self.forward[key]

    def get(self, key: int, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self else default  # noqa: SIM401 -- dict.get would skip the forward table

    def __len__(self) -> int:
        return FEATURE_STORAGE_OFFSET + dict.__len__(self)

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(self.forward.values()) + list(dict.values(self))


class feature_storages:
    """Swap :class:`FeatureStorages` in for the recorder's table (kept in ``ctx`` across steps)."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx

    def __enter__(self) -> None:
        from vkc.modeltrace.recorder import RECORDER

        self.forward = RECORDER.storages
        own = self.ctx.get("feature_storages", {})
        for st in own.values():     # a producer named in an earlier step ("event:<i>") is not this step's
            st["producer"] = st["first"]
        RECORDER.storages = FeatureStorages(self.forward, own)

    def __exit__(self, *exc: object) -> None:
        from vkc.modeltrace.recorder import RECORDER

        self.ctx["feature_storages"] = {k: dict.__getitem__(RECORDER.storages, k) for k in dict.keys(RECORDER.storages)}
        RECORDER.storages = self.forward


_STATE_TENSORS = (("sampling_states", ("temperature", "top_k", "top_p", "min_p", "seeds")),
                  ("penalties_state", ("repetition_penalty", "frequency_penalty", "presence_penalty")))


def _uva_like_h100() -> None:
    """``UvaBuffer.__init__`` as on a GPU host (pinned CPU memory + its device view), and
    ``is_uva_available()`` as a CUDA platform with pinned memory answers it."""
    import torch
    from vllm.v1.worker.gpu import buffer_utils as bu

    def uva_init(self: Any, size: Any, dtype: Any) -> None:
        self.cpu = torch.zeros(size, dtype=dtype, device="cpu")      # pinned on a GPU host
        self.np = self.cpu.numpy()
        self._uva = torch.empty(self.cpu.shape, dtype=dtype, device="meta")   # its device view

    bu.UvaBuffer.__init__ = uva_init  # type: ignore[method-assign]
    bu.is_uva_available = lambda: True


def sampler_state(vllm_config: Any, mix: str = DEFAULT_MIX) -> dict[str, Any]:
    """The V2 runner's request state, input buffers and sampler (``GPUModelRunner.load_model``),
    for requests of sampling mix ``mix``."""
    import numpy as np
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.v1.worker.gpu.input_batch import InputBuffers
    from vllm.v1.worker.gpu.sample.sampler import Sampler
    from vllm.v1.worker.gpu.states import RequestState

    _uva_like_h100()
    np.random.seed(0)       # SamplingStates draws a seed per request without one: same trace every run
    mc, sc, spec = vllm_config.model_config, vllm_config.scheduler_config, vllm_config.speculative_config
    steps = int(vllm_config.num_speculative_tokens or 0)     # GPUModelRunner.num_speculative_steps
    dev = torch.device("meta")
    with set_current_vllm_config(vllm_config):
        req_states = RequestState(max_num_reqs=sc.max_num_seqs, max_model_len=mc.max_model_len,
                                  max_num_batched_tokens=sc.max_num_batched_tokens, num_speculative_steps=steps,
                                  vocab_size=mc.get_vocab_size(), device=dev, num_prefill_lookahead=1,
                                  use_dense_all_token_ids=spec is not None and spec.use_ngram())
        buffers = InputBuffers(max_num_reqs=sc.max_num_seqs, max_num_tokens=sc.max_num_batched_tokens, device=dev)
        kwargs = {"max_num_reqs": sc.max_num_seqs, "vocab_size": mc.get_vocab_size(), "device": dev,
                  "req_states": req_states, "logprobs_mode": mc.logprobs_mode, "num_speculative_tokens": steps + 1,
                  "use_fp64_gumbel": mc.use_fp64_gumbel, "enable_trace_replay": mc.enable_trace_replay,
                  "return_sampling_mask": mc.return_sampling_mask, "custom_logits_processors": ()}
        if getattr(vllm_config, "watermark_config", None) is None:
            sampler = Sampler(vllm_config=vllm_config, **kwargs)
        else:                           # --watermark-config: vLLM's watermarking sampler
            from .watermark import watermark_sampler

            sampler = watermark_sampler(vllm_config, **kwargs)
        rejection = None
        if spec is not None:
            from vllm.v1.worker.gpu.spec_decode.rejection_sampler import RejectionSampler

            rejection = RejectionSampler(sampler, spec, dev, watermark_key=None)
    _name_state(sampler, req_states, buffers)
    from .mix_worker import name_mix_state, prompt_logprobs_worker

    if mix != DEFAULT_MIX:
        name_mix_state(sampler)
    return {"req_states": req_states, "buffers": buffers, "sampler": sampler, "use_v2": _use_v2(vllm_config),
            "use_flashinfer": bool(sampler.use_flashinfer), "rejection_sampler": rejection,
            "decode_query_len": steps + 1, "mix": mix, "prompt_logprobs_worker": prompt_logprobs_worker(vllm_config)}


def _use_v2(vllm_config: Any) -> bool:
    try:
        return bool(vllm_config.use_v2_model_runner)
    except Exception:  # noqa: BLE001 -- reported, not fatal
        return False


def _name_state(sampler: Any, req_states: Any, buffers: Any) -> None:
    """Producers the artifacts can read: per-request sampling parameters and the runner's buffers."""
    from vkc.modeltrace.recorder import RECORDER

    for holder, names in _STATE_TENSORS:
        obj = getattr(sampler, holder)
        for n in names:
            for buf in getattr(obj, n).pool._uva_bufs:
                RECORDER.name_storage(buf._uva, f"sampling_params:{n}")
    RECORDER.name_storage(sampler.penalties_state.prompt_bin_mask, "sampler_state:prompt_bin_mask")
    RECORDER.name_storage(sampler.penalties_state.output_bin_counts, "sampler_state:output_bin_counts")
    RECORDER.name_storage(req_states.all_token_ids.gpu, "request_state:all_token_ids")
    for n in ("prompt_len", "prefill_len"):
        for buf in getattr(req_states, n).pool._uva_bufs:
            RECORDER.name_storage(buf._uva, f"request_state:{n}")
    for n in ("input_ids", "positions", "query_start_loc", "seq_lens", "is_padding"):
        RECORDER.name_storage(getattr(buffers, n), f"input_buffers:{n}")


def _admit(state: dict[str, Any], num_reqs: int, prompt_len: int, computed: int) -> None:
    """``GPUModelRunner.add_requests`` for ``num_reqs`` requests of ``prompt_len`` prompt tokens,
    request ``i`` with its mix's sampling parameters (:func:`vkc.modeltrace.mixes.sampling_params`)."""
    from .mix_worker import add_request
    from .watermark import resolve_watermarking

    rs, sampler = state["req_states"], state["sampler"]
    for req_id in sorted(rs.req_id_to_index):           # the previous step's requests finish
        rs.remove_request(req_id)
    vocab = state["vllm_config"].model_config.get_vocab_size()
    for i in range(num_reqs):
        req_id = f"req-{i}"
        params = resolve_watermarking(state["vllm_config"], sampling_params(state["mix"], i, vocab, 256))
        rs.add_request(req_id=req_id, prompt_len=prompt_len, all_token_ids=[0] * prompt_len,
                       num_computed_tokens=computed, max_tokens=256)
        sampler.add_request(rs.req_id_to_index[req_id], params)
        add_request(state, req_id, params)
    with _admit_host(state):
        rs.apply_staged_writes()
        sampler.apply_staged_writes()


@contextlib.contextmanager
def _admit_host(state: dict[str, Any]) -> Iterator[None]:
    """Keep what admission copies host-to-device (``state["admit_host"]``: (device tensor, host
    values of its whole storage)): the staged writes' index/start/length/content lists
    (``UvaBufferPool.copy_to_uva``, ``async_tensor_h2d``) and the penalties' new-request mapping, so
    the admission kernels' buffers have the values vLLM gave them."""
    import numpy as np
    from vllm.v1.worker.gpu import buffer_utils as bu
    from vllm.v1.worker.gpu.sample import penalties as pen

    kept: list[tuple[Any, Any]] = state.setdefault("admit_host", [])
    pool_copy, h2d = bu.UvaBufferPool.copy_to_uva, bu.async_tensor_h2d

    def copy_to_uva(self: Any, x: Any) -> Any:
        out = pool_copy(self, x)
        buf = self._uva_bufs[self._curr]
        kept.append((buf._uva, np.array(buf.np, copy=True)))
        return out

    def async_h2d(data: Any, device: Any = None, dtype: Any = None, out: Any = None) -> Any:
        t = h2d(data, device=device, dtype=dtype, out=out)
        if out is None:
            kept.append((t, np.asarray(data)))
        return t

    staged_apply = bu.StagedWriteTensor.apply_write
    mirrors: dict[int, Any] = state.setdefault("staged_mirrors", {})

    def apply_write(self: Any) -> None:
        # _apply_write_kernel's effect on a host mirror of the target (zeros when vLLM made it;
        # the UVA case's host array is the target itself on a GPU host)
        writes = (list(self._staged_write_indices), list(self._staged_write_starts),
                  list(self._staged_write_contents), list(self._staged_write_cu_lens))
        staged_apply(self)
        mirror = mirrors.get(id(self))
        if mirror is None:
            mirror = mirrors[id(self)] = np.zeros(tuple(self.gpu.shape), dtype=_NP[str(self.dtype)])
        rows, starts, contents, cu = writes
        for i, (row, start) in enumerate(zip(rows, starts)):
            lo = cu[i - 1] if i else 0
            mirror.reshape(mirror.shape[0], -1)[row, start:start + cu[i] - lo] = contents[lo:cu[i]]
        kept.append((self.gpu, mirror.copy()))

    bu.UvaBufferPool.copy_to_uva = copy_to_uva  # type: ignore[method-assign]
    bu.StagedWriteTensor.apply_write = apply_write  # type: ignore[method-assign]
    bu.async_tensor_h2d = pen.async_tensor_h2d = async_h2d
    try:
        yield
    finally:
        bu.UvaBufferPool.copy_to_uva = pool_copy  # type: ignore[method-assign]
        bu.StagedWriteTensor.apply_write = staged_apply  # type: ignore[method-assign]
        bu.async_tensor_h2d = pen.async_tensor_h2d = h2d


_NP = {"torch.int32": "int32", "torch.int64": "int64", "torch.float32": "float32"}


def _runs(values: Any) -> list[list[Any]]:
    """Run-length form ``[[value, count], ...]`` of a flat host array (vectorised: the staged-write
    targets hold tens of millions of elements)."""
    import numpy as np

    a = np.asarray(values).reshape(-1)
    if a.size == 0:
        return []
    cuts = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    lengths = np.diff(np.concatenate((starts, [a.size])))
    return [[v, int(n)] for v, n in zip(a[starts].tolist(), lengths.tolist())]


def host_contents(state: dict[str, Any], idx_np: Any) -> dict[str, Any]:
    """The contents the runner's host side wrote into the feature's index and parameter buffers,
    by storage id (``{"runs": [[value, count], ...]}`` over the whole storage): the per-request
    sampling parameters and lengths (the UVA buffers' host arrays), the batch's request slots."""
    import numpy as np

    from vkc.modeltrace.recorder import RECORDER

    def put(t: Any, host: Any, out: dict[str, Any], runs: list[list[Any]] | None = None) -> None:
        st = RECORDER.storages.get(RECORDER._key(t))
        if st is not None:
            out[st["id"]] = {"runs": runs if runs is not None else _runs(np.asarray(host).reshape(-1))}

    out: dict[str, Any] = {}
    # admission's copies first: the buffers the sampler reads later are put again below, as they are now
    for t, host in state.pop("admit_host", []):
        put(t, host, out)
    sampler, rs = state["sampler"], state["req_states"]
    for holder, names in _STATE_TENSORS:
        for n in names:
            for buf in getattr(getattr(sampler, holder), n).pool._uva_bufs:
                put(buf._uva, buf.np, out)
    for n in ("prompt_len", "prefill_len"):
        for buf in getattr(rs, n).pool._uva_bufs:
            put(buf._uva, buf.np, out)
    if "idx_mapping" in state:
        put(state["idx_mapping"], idx_np, out)
    if "batch" in state:
        _batch_contents(state, put, out)
    for t, host in state.pop("spec_host", {}).values():
        put(t, host, out)
    if "bitmask_host" in state:
        w, bitmask, mapping = state.pop("bitmask_host")
        rows, width = bitmask.shape
        put(w.grammar_bitmask, None, out, [[-1, rows * width], [0, int(w.grammar_bitmask.numel()) - rows * width]])
        put(w.logits_indices, None, out, _sparse_runs(int(w.logits_indices.numel()), dict(enumerate(mapping))))
    return dict(sorted(out.items()))


def _batch_contents(state: dict[str, Any], put: Any, out: dict[str, Any]) -> None:
    """The batch's device tensors from the host arrays ``InputBatch.make_dummy`` made them from
    (its padding included: the whole buffer); the penalties' prompt statistics as ``bincount``
    leaves them for the admitted prompts (all token id 0, no output tokens yet)."""
    import numpy as np

    batch, buffers, pen = state["batch"], state["buffers"], state["sampler"].penalties_state
    n, tokens = batch.num_reqs, batch.num_tokens
    qsl = np.full(buffers.query_start_loc.shape[0], tokens, dtype=np.int64)
    qsl[: n + 1] = batch.query_start_loc_np
    put(buffers.query_start_loc, qsl, out)
    # _prepare_pos_seq_lens_kernel: seq_len = num_computed + query length (0 past the batch),
    # position = num_computed + offset in the query
    computed = state["req_states"].num_computed_tokens_np[state["idx_mapping_np"]].astype(np.int64)
    q = np.diff(batch.query_start_loc_np).astype(np.int64)
    seq = np.zeros(buffers.seq_lens.shape[0], dtype=np.int64)
    seq[:n] = computed + q
    put(buffers.seq_lens, seq, out)
    pos = np.zeros(buffers.positions.shape[0], dtype=np.int64)
    for i in range(n):
        lo = int(batch.query_start_loc_np[i])
        pos[lo:lo + int(q[i])] = computed[i] + np.arange(int(q[i]))
    put(buffers.positions, pos, out)
    rs = state["req_states"]
    put(rs.num_computed_tokens.gpu, rs.num_computed_tokens_np, out)
    put(rs.last_sampled_tokens, None, out, [[0, int(rs.last_sampled_tokens.numel())]])   # torch.zeros
    if rs.draft_tokens.numel():
        put(rs.draft_tokens, None, out, [[0, int(rs.draft_tokens.numel())]])
    put(batch.cu_num_logits, batch.cu_num_logits_np, out)
    put(batch.expanded_local_pos, np.zeros(batch.expanded_local_pos.shape[0], dtype=np.int64), out)
    put(buffers.input_ids, np.zeros(buffers.input_ids.shape[0], dtype=np.int64), out)   # make_dummy's zero_()
    put(batch.logits_indices, batch.query_start_loc_np[1:] - 1, out)
    width = int(pen.prompt_bin_mask.shape[1])
    put(pen.prompt_bin_mask, None, out, _sparse_runs(pen.prompt_bin_mask.numel(),     # token 0: word 0, bit 0
                                                     {int(r) * width: 1 for r in state["idx_mapping_np"]}))
    put(pen.output_bin_counts, None, out, [[0, int(pen.output_bin_counts.numel())]])


def _sparse_runs(numel: int, values: dict[int, Any], default: Any = 0) -> list[list[Any]]:
    """Runs of a ``numel``-element buffer of ``default`` with ``values`` at the given flat indices."""
    out: list[list[Any]] = []
    pos = 0
    for i in sorted(values):
        if i > pos:
            out.append([default, i - pos])
        if out and out[-1][0] == values[i]:
            out[-1][1] += 1
        else:
            out.append([values[i], 1])
        pos = i + 1
    if numel > pos:
        out.append([default, numel - pos])
    return out


def _batch(state: dict[str, Any], num_reqs: int, tokens: int) -> Any:
    """``InputBatch.make_dummy`` (the batch of ``_dummy_sampler_run``) with the request slots of the
    admitted requests, as ``GPUModelRunner.prepare_inputs`` maps them (``req_id_to_index``)."""
    import dataclasses

    import numpy as np
    import torch
    from vllm.v1.worker.gpu.input_batch import InputBatch, prepare_pos_seq_lens

    from vkc.modeltrace.recorder import RECORDER

    batch = InputBatch.make_dummy(num_reqs, tokens, state["buffers"])
    rs = state["req_states"]
    idx_np = np.fromiter((rs.req_id_to_index[f"req-{i}"] for i in range(num_reqs)), dtype=np.intp, count=num_reqs)
    idx = torch.empty(num_reqs, dtype=torch.int64, device="meta")
    RECORDER.name_storage(idx, "metadata:idx_mapping")
    # positions and seq_lens of the real step (make_dummy's are a profiling run's): as prepare_inputs
    RECORDER.stack = ["sampler.prepare"]
    prepare_pos_seq_lens(idx, batch.query_start_loc, rs.num_computed_tokens.gpu, state["buffers"].positions,
                         state["buffers"].seq_lens)
    RECORDER.stack = ["sampler"]
    state["idx_mapping"], state["idx_mapping_np"] = idx, idx_np
    state["batch"] = dataclasses.replace(batch, req_ids=[f"req-{i}" for i in range(num_reqs)], idx_mapping=idx,
                                         idx_mapping_np=idx_np, expanded_idx_mapping=idx,
                                         prefill_len_np=rs.prefill_len.np[idx_np],     # host arrays, as prepare_inputs
                                         num_computed_prefill_tokens_np=rs.num_computed_prefill_tokens[idx_np])
    return state["batch"]


def _bitmask_worker(state: dict[str, Any]) -> Any:
    """``GPUModelRunner.load_model``'s ``StructuredOutputsWorker`` (decode query length 1)."""
    import torch
    from vllm.v1.worker.gpu.structured_outputs import StructuredOutputsWorker

    from vkc.modeltrace.recorder import RECORDER

    if "bitmask_worker" not in state:
        vc = state["vllm_config"]
        q = int(state["decode_query_len"])
        w = StructuredOutputsWorker(max_num_logits=vc.scheduler_config.max_num_seqs * q,
                                    vocab_size=vc.model_config.get_vocab_size(), device=torch.device("meta"),
                                    mask_stride=q)
        RECORDER.name_storage(w.grammar_bitmask, "structured_output:grammar_bitmask")
        RECORDER.name_storage(w.logits_indices, "structured_output:logits_indices")
        state["bitmask_worker"] = w
    return state["bitmask_worker"]


def _apply_bitmask(state: dict[str, Any], logits: Any, batch: Any) -> None:
    """``GPUModelRunner.sample``: ``apply_grammar_bitmask`` on the logits, every request under a
    grammar (:data:`BITMASK_MIX`); the host bitmask is the grammar's (any bits: here all allowed)."""
    import numpy as np
    from vllm.utils.math_utils import cdiv

    w = _bitmask_worker(state)
    n = batch.num_reqs
    q = w.mask_stride
    bitmask = np.full((n * q, cdiv(logits.shape[-1], 32)), -1, dtype=np.int32)
    w.apply_grammar_bitmask(logits, batch, list(batch.req_ids), bitmask)
    # the host arrays it copied to the device: the bitmask rows and each row's logit (req * stride + pos)
    state["bitmask_host"] = (w, bitmask, list(range(n * q)))


def run_features(state: dict[str, Any], step: dict[str, Any], logits: Any,
                 features: tuple[str, ...], forward: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Admit the step's requests (recorded in a prefill step), then, as ``GPUModelRunner.sample``
    does, apply the grammar bitmask (``bitmask``) and sample (``sampler``) the step's ``logits``,
    then (``sample_tokens``) the prompt logprobs over ``forward`` = (hidden states, the model's
    ``compute_logits``); returns :func:`host_contents`."""
    from vllm.config import set_current_vllm_config

    from vkc.modeltrace.launches import capture_module
    from vkc.modeltrace.recorder import RECORDER, make_dispatch_mode

    tw = capture_module()
    b = int(step["batch"])
    prefill = step["workload"] == "prefill"
    verify = not prefill and state.get("rejection_sampler") is not None     # decode with drafts
    q = 1 if not verify else int(state["decode_query_len"])
    # a decode step's context (ctx) ends with its q new tokens: the rest is computed (all prompt)
    prompt = int(step["prompt_len"]) if prefill else max(1, int(step["ctx"]) - q)
    tokens = b * (prompt if prefill else q)
    launches = tw.STATE.launches
    with set_current_vllm_config(state["vllm_config"]), make_dispatch_mode():
        try:
            RECORDER.active = prefill
            RECORDER.stack = ["sampler.admit"]
            if not prefill:             # admitted steps before: its launches are not this step's
                tw.STATE.launches = []
            _admit(state, b, prompt, 0 if prefill else prompt)
            tw.STATE.launches = launches
            RECORDER.active = True
            RECORDER.stack = ["sampler"]
            batch = _batch(state, b, tokens)
            if verify:
                from vkc.modeltrace.spec import spec_batch

                RECORDER.stack = ["sampler.spec"]
                batch = spec_batch(state, batch)
                RECORDER.stack = ["sampler"]
            if "bitmask" in features:
                RECORDER.stack = ["sampler.bitmask"]
                _apply_bitmask(state, logits, batch)
                RECORDER.stack = ["sampler"]
            out = None
            if verify:
                out = state["rejection_sampler"](logits, batch)
            elif "sampler" in features or "spec" in features or "watermark" in features:
                out = state["sampler"](logits, batch)
            if "spec" in features and out is not None:     # sample_tokens' tail: postprocess, the drafter
                from .spec import after_sample

                RECORDER.stack = ["sampler.propose"]
                after_sample(state, batch, out)
                RECORDER.stack = ["sampler"]
            if forward is not None:
                from .mix_worker import prompt_logprobs

                RECORDER.stack = ["sampler.prompt_logprobs"]
                prompt_logprobs(state, batch, *forward)
                RECORDER.stack = ["sampler"]
            return host_contents(state, state["idx_mapping_np"])
        finally:
            tw.STATE.launches = launches
            RECORDER.active = False
            RECORDER.stack = []
