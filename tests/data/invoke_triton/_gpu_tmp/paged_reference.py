"""Torch reference for kernel_paged_attention_2d (decode, 5-D key cache, sliding window, sinks).

Run as a script: ``python paged_reference.py DIR CONFIG`` imports DIR/run.py (the generated
invocation example, with the kernel source beside it), builds CONFIG (FULL|SMALL) with the
script's own ``build``/``make_launch``, launches the kernel and compares its output with
:func:`paged_decode_reference`.  Prints ``MAXERR <value>`` and exits 1 on mismatch.
"""
from __future__ import annotations

import importlib.util
import sys


def paged_decode_reference(q, key_cache, value_cache, block_table, seq_lens, scale, sinks=None, window=0):
    """q [B, Hq, D]; key_cache [NB, Hkv, D//x, BS, x]; value_cache [NB, Hkv, D, BS] -> [B, Hq, D] fp32."""
    import torch

    B, hq, D = q.shape
    _, hkv, _, bs, _ = key_cache.shape
    g = hq // hkv
    out = torch.empty(B, hq, D, dtype=torch.float32, device=q.device)
    for b in range(B):
        L = int(seq_lens[b])
        start = max(0, L - window) if window > 0 else 0
        pos = torch.arange(start, L, device=q.device)
        blk = block_table[b, pos // bs].long()
        off = pos % bs
        k = key_cache[blk, :, :, off, :].reshape(len(pos), hkv, D).float()     # [n, Hkv, D]
        v = value_cache[blk, :, :, off].float()                                 # [n, Hkv, D]
        s = torch.einsum("hgd,nhd->hgn", q[b].float().view(hkv, g, D), k) * scale
        if sinks is not None:
            s = torch.cat([s, sinks.float().view(hkv, g, 1)], dim=-1)
        p = torch.softmax(s, dim=-1)[..., : len(pos)]
        out[b] = torch.einsum("hgn,nhd->hgd", p, v).reshape(hq, D)
    return out


def main(directory: str, config: str) -> int:
    import torch

    spec = importlib.util.spec_from_file_location("vkc_invocation", f"{directory}/run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg, _bufs, args, cx = mod.build(config)
    mod.make_launch(cfg, args, cx)()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    ref = paged_decode_reference(args["query_ptr"], args["key_cache_ptr"], args["value_cache_ptr"],
                                 args["block_tables_ptr"], args["seq_lens_ptr"], args["scale"],
                                 args["sink_ptr"] if cx["USE_SINKS"] else None, cx["SLIDING_WINDOW"])
    got = args["output_ptr"].float()
    err = (got - ref).abs().max().item()
    print(f"MAXERR {err:.6f} window={cx['SLIDING_WINDOW']} sinks={cx['USE_SINKS']} shape={tuple(got.shape)}")
    return 0 if err < 2e-2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
