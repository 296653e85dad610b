"""Recipe: Mamba2 SSM kernels (``_selective_scan_update_kernel``, ``_chunk_scan_fwd_kernel``).

None of the benchmark models (Llama-3.1, gpt-oss, Qwen3-Coder) has SSM layers, so the
recipe builds a Mamba2 mixer from ``hidden_size`` with the Mamba2 reference defaults
(state-spaces/mamba ``Mamba2``; also vLLM's ``MambaMixer2`` arguments):
``expand = 2`` (d_inner = 2*hidden), ``head_dim = 64`` (nheads = d_inner/64),
``d_state = 128``, ``n_groups = 1``, ``chunk_size = 256``; the SSM state cache in the
model dtype (``mamba_ssm_cache_dtype="auto"``), ``A``/``D``/``dt_bias`` in fp32.

* decode: ``mamba_ssm.selective_state_update`` exactly as ``MambaMixer2`` calls it
  (``A``/``dt``/``dt_bias``/``D`` expanded over head_dim with stride 0, ``x``/``B``/``C``
  column views of the conv output ``xBC``, ``dt_softplus=True``, state slots
  ``state_batch_indices`` = 1..batch (slot 0 is vLLM's null block)).
* prefill: ``ssd_chunk_scan._chunk_scan_fwd`` (step 5 of the SSD pipeline) with the
  earlier steps' outputs as inputs: ``CB`` fp32, ``dt`` (post-softplus) in (0.001, 0.1),
  ``dA_cumsum`` decreasing in [-8, 0], chunk states; ``seqs`` sequences of ``seq_len``
  tokens (multiples of chunk_size), ``cu_chunk_seqlens``/``seq_idx`` as vLLM's Mamba2
  metadata builds them.  The launch is autotuned: the first pruned config is used.
"""
from __future__ import annotations

import math
from typing import Any

from vkc.invoke.core.family import Family
from vkc.invoke.triton.recipes.base import (
    DTYPE_BYTES,
    dispatch,
    model_dtype,
    triton_recipe,
)

K_UPDATE = "vllm.model_executor.layers.mamba.ops.mamba_ssm:_selective_scan_update_kernel"
K_SCAN = "vllm.model_executor.layers.mamba.ops.ssd_chunk_scan:_chunk_scan_fwd_kernel"
KERNELS: tuple[str, ...] = (K_UPDATE, K_SCAN)
WORKLOADS: tuple[str, ...] = ("prefill", "decode")
DEFAULT_WORKLOAD = "decode"

EXPAND, HEAD_DIM, D_STATE, N_GROUPS, CHUNK = 2, 64, 128, 1, 256
DECODE_BATCH = 256
SEQ_LEN = 4096


def mamba_dims(model: dict, small: bool = False) -> dict:
    if small:
        return {"d_inner": 128, "nheads": 4, "head_dim": 32, "d_state": 16, "n_groups": 1, "chunk_size": 16}
    d_inner = EXPAND * int(model["hidden_size"])
    return {"d_inner": d_inner, "nheads": d_inner // HEAD_DIM, "head_dim": HEAD_DIM,
            "d_state": D_STATE, "n_groups": N_GROUPS, "chunk_size": CHUNK}


def shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
    md = mamba_dims(model, small)
    dtype = "float16" if small else model_dtype(model)
    es = DTYPE_BYTES[dtype]
    nh, hd, ds, ng, cs = md["nheads"], md["head_dim"], md["d_state"], md["n_groups"], md["chunk_size"]
    xbc_w = md["d_inner"] + 2 * ng * ds
    out: dict[str, Any] = {"mamba": md, "dtype": dtype, "workload": workload,
                           "notes": ["SMALL_SANITY sizes (not the model's)"] if small else [
                               (f"Mamba2 mixer derived from hidden_size: d_inner={md['d_inner']}, nheads={nh}, "
                               f"head_dim={hd}, d_state={ds}, n_groups={ng}, chunk_size={cs} "
                               "(Mamba2 defaults; the model has no SSM layers)")]}
    # decode: the state cache dominates
    per_seq = nh * hd * ds * es + (xbc_w + 2 * md["d_inner"] + nh) * es
    out["batch"] = 4 if small else int(min(DECODE_BATCH, max(1, budget_bytes // per_seq - 1)))
    # prefill: tokens in whole sequences of seq_len (a multiple of chunk_size)
    if small:
        out.update(seq_len=2 * cs, seqs=2)
    else:
        max_ctx = int(model.get("max_position_embeddings") or SEQ_LEN)
        seq_len = max(cs, (min(SEQ_LEN, max_ctx) // cs) * cs)
        per_tok = (xbc_w + md["d_inner"]) * es + 2 * nh * 4 + ng * cs * 4 + math.ceil(nh * hd * ds * es / cs)
        seqs = max(1, budget_bytes // (per_tok * seq_len))
        out.update(seq_len=seq_len, seqs=int(seqs))
    out["tokens"] = out["seq_len"] * out["seqs"]
    return out


def _update(get: Any, shp: dict, T: Any) -> None:
    md, dtype, b = shp["mamba"], shp["dtype"], shp["batch"]
    nh, hd, ds, ng, di = md["nheads"], md["head_dim"], md["d_state"], md["n_groups"], md["d_inner"]
    ssm = get("vllm.model_executor.layers.mamba.ops.mamba_ssm")
    state = T.tensor("ssm_state", (b + 1, nh, hd, ds), dtype, ("randn_scaled", 0.1))
    xbc = T.tensor("xBC", (b, di + 2 * ng * ds), dtype, "randn")
    x = xbc[:, :di].view(b, nh, hd)
    B = xbc[:, di:di + ng * ds].view(b, ng, ds)
    C = xbc[:, di + ng * ds:].view(b, ng, ds)
    dt = T.tensor("dt", (b, nh), dtype, "randn")[:, :, None].expand(-1, -1, hd)
    A = T.tensor("A", (nh,), "float32", ("uniform", -16.0, -1.0))[:, None, None].expand(-1, hd, ds)
    dt_bias = T.tensor("dt_bias", (nh,), "float32", ("uniform", -4.0, -1.0))[:, None].expand(-1, hd)
    D = T.tensor("D", (nh,), "float32", "ones")[:, None].expand(-1, hd)
    idx = T.tensor("state_indices", (b,), "int32", ("arange", 1, 1))
    out = T.tensor("ssm_out", (b, nh, hd), dtype, "empty")
    ssm.selective_state_update(state, x, dt, A, B, C, D, dt_bias, dt_softplus=True,
                               state_batch_indices=idx, dst_state_batch_indices=idx, out=out)


def _scan(get: Any, shp: dict, T: Any) -> None:
    md, dtype = shp["mamba"], shp["dtype"]
    nh, hd, ds, ng, di, cs = (md["nheads"], md["head_dim"], md["d_state"], md["n_groups"],
                              md["d_inner"], md["chunk_size"])
    n, L = shp["tokens"], shp["seq_len"]
    nchunks = n // cs
    per_seq = L // cs
    scan = get("vllm.model_executor.layers.mamba.ops.ssd_chunk_scan")
    xbc = T.tensor("xBC", (n, di + 2 * ng * ds), dtype, "randn")
    x = xbc[:, :di].view(n, nh, hd)
    C = xbc[:, di + ng * ds:].view(n, ng, ds)
    cb = T.tensor("CB", (nchunks, ng, cs, cs), "float32", ("randn_scaled", 0.1))
    dt = T.tensor("dt", (nh, nchunks, cs), "float32", ("uniform", 0.001, 0.1))
    step = -8.0 / (nh * nchunks * cs)
    dA = T.tensor("dA_cumsum", (nh, nchunks, cs), "float32", ("arange", 0.0, step))
    states = T.tensor("states", (nchunks, nh, hd, ds), dtype, ("randn_scaled", 0.1))
    cu = T.tensor("cu_chunk_seqlens", (nchunks + 1,), "int32", ("arange", 0, cs))
    seq_idx = T.tensor("seq_idx", (nchunks,), "int32", ("values", [i // per_seq for i in range(nchunks)]))
    out = T.tensor("out", (n, nh, hd), dtype, "empty")
    D = T.tensor("D", (nh,), "float32", "ones")
    scan._chunk_scan_fwd(cb, x, dt, dA, C, states, cu, out, seq_idx, D=D, z=None, initial_states=None)


def call(vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    dispatch("ssm", {K_UPDATE: _update, K_SCAN: _scan}, vllm_mod_getter, shp, T)


RECIPES = (
    triton_recipe(KERNELS, Family.SSM, shapes, call,
                  workloads=WORKLOADS, default_workload=DEFAULT_WORKLOAD),
)
