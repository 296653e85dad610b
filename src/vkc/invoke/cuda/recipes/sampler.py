"""csrc/sampler.cu: apply_repetition_penalties_kernel (sampler) and topKPerRowDecode (DSA indexer top-k)."""
from __future__ import annotations

from vkc.errors import InvocationError
from vkc.invoke.cuda.literals import cpp_int, cpp_str
from vkc.invoke.cuda.plan import (
    Buffer,
    Check,
    Plan,
    Scale,
    Stmt,
    const,
    host,
    uniform,
    zero,
)
from vkc.invoke.cuda.recipes.base import Ctx, Family, cuda_recipe

SM = "csrc/sampler.cu"
SAMPLER_MAX_SEQS = 1024          # decode batch cap (sequences sampled per step)
INDEX_TOPK = 2048                # DeepSeek-V3.2 config index_topk (the DSA indexer's top-k)
SORT_THRESHOLD = 12288           # top_k_per_row_decode: kSortingAlgorithmThreshold
SPLIT_THRESHOLD = 200 * 1000     # top_k_per_row_decode: kSplitWorkThreshold
SPLIT_BLOCKS = 10                # multipleBlocksPerRowConfig on CUDA

# prompt tokens hit ~1/64 of the vocabulary, generated tokens ~1/256 (sparse, like real prompts)
_MASK_HOST = "for (size_t i = 0; i < n; ++i) h[i] = (uint8_t)(rng.next() % {den} == 0);"


def _line(c: Ctx, text: str) -> int:
    return int(c.at(SM, text).rsplit(":", 1)[1])


def repetition_penalties(c: Ctx) -> Plan:
    d = c.dims
    if not d.vocab:
        raise InvocationError(f"model {d.model_id} has no vocab_size", hint="check vocab_size in the config")
    after = _line(c, "void apply_repetition_penalties_(")
    consts = (
        c.const_int("vocab_size", d.vocab, "vocab_size", src=(SM, "int vocab_size = logits.size(-1);")),
        Stmt("using scalar_t = float;",
             "dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES(float32)",
             "the V1 sampler works on float32 logits and float32 penalties"),
    )
    derived = (Stmt("const int num_seqs = (int)num_seqs_ll;", "vkc: one logits row per sequence being sampled"),)
    launch = (
        c.w(SM, "int sms = 0;", after=after),
        c.w(SM, "cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, logits.get_device_index());",
            "VKC_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));", after=after),
        c.w(SM, "int tile_num = std::min(vocab_size, std::max(1, (sms + num_seqs - 1) / num_seqs));", after=after),
        c.w(SM, "int tile_size = (vocab_size + tile_num - 1) / tile_num;", after=after),
        c.w(SM, "dim3 grid(num_seqs, tile_num);", after=after),
        c.w(SM, "dim3 block(std::min(tile_size, 1024));", after=after),
    )
    return Plan(
        kernel_symbol="vllm::apply_repetition_penalties_kernel", template_args=("float",),
        consts=consts,
        scale=Scale("num_seqs_ll", "(size_t)vocab_size * (4 + 1 + 1) + 4", small=4,
                    maximum=cpp_int(SAMPLER_MAX_SEQS), note="logits fp32 + two bool masks per sequence"),
        derived=derived,
        buffers=(
            Buffer("logits", "scalar_t", "(size_t)num_seqs * vocab_size", uniform(-10.0, 10.0), "inout",
                   "[num_seqs, vocab_size] fp32, in place"),
            Buffer("prompt_mask", "uint8_t", "(size_t)num_seqs * vocab_size", host(_MASK_HOST.format(den=64)),
                   "in", "[num_seqs, vocab_size] bool (0/1 bytes): ~1/64 of the vocab is in the prompt"),
            Buffer("output_mask", "uint8_t", "(size_t)num_seqs * vocab_size", host(_MASK_HOST.format(den=256)),
                   "in", "[num_seqs, vocab_size] bool (0/1 bytes): ~1/256 of the vocab was generated"),
            Buffer("repetition_penalties", "scalar_t", "num_seqs", uniform(1.0, 1.5), "in",
                   "[num_seqs] >= 1 (typical repetition_penalty values)"),
        ),
        launch_stmts=launch, grid="grid", block="block", smem="0",
        args=("logits", "reinterpret_cast<const bool*>(prompt_mask)", "reinterpret_cast<const bool*>(output_mask)",
              "repetition_penalties", "num_seqs", "vocab_size", "tile_size"),
        bytes_moved="(double)num_seqs * vocab_size * (2.0 * 4 + 2.0) + 4.0 * num_seqs",
        dispatch="VLLM_STABLE_DISPATCH_FLOATING_TYPES(logits float32 -> float)",
        wrapper=f"{c.at(SM, 'void apply_repetition_penalties_(')} (apply_repetition_penalties_)",
        grid_expr="dim3(num_seqs, min(vocab_size, max(1, ceil(sms / num_seqs))))",
        block_expr="min(ceil(vocab_size / tile_num), 1024)", smem_expr="0",
        notes=(("the masks are uint8_t 0/1 buffers passed as const bool* (the kernel's bool layout); "
               "GB/s counts logits read+write and both masks (the kernel reads every mask byte)"),
               "repeated launches rescale the repeated logits again (values stay finite: 1.5^24 * 10)"),
    )


def _num_columns(c: Ctx) -> int:
    return int(c.dims.max_ctx)


def _topk_consts(c: Ctx, cols: int, after: int, split: bool, radix: bool) -> list[Stmt]:
    """The row width, top-k and the wrapper constants the chosen branch uses."""
    consts = [
        c.const_int("numColumns", cols, f"max_ctx={cols}: the indexer's logits row width (max_model_len)",
                    ctype="int64_t", src=(SM, "const auto numColumns = logits.size(1);")),
        c.const_int("topK", INDEX_TOPK, "DeepSeek-V3.2 index_topk = 2048", ctype="int64_t"),
        c.const_int("next_n", 1, "no speculative tokens: one query row per sequence", ctype="int64_t"),
        c.w(SM, "constexpr int kNumThreadsPerBlock = 512;", after=after),
        c.w(SM, "int seqLensIs2D = seqLens.dim() == 2 ? 1 : 0;", "const int seqLensIs2D = 0;", after=after,
            note="seqLens is 1-D [batch]"),
        Stmt("const int64_t stride0 = numColumns;", "vkc: logits.stride(0), contiguous [numRows, numColumns]"),
        Stmt("const int64_t stride1 = 1;", "vkc: logits.stride(1)"),
    ]
    if split or radix:   # only the thresholds the chosen branch's check uses (no unused constants)
        consts.insert(4, c.w(SM, "constexpr int kSplitWorkThreshold = 200 * 1000;", after=after))
    if not split:
        consts.insert(4, c.w(SM, "constexpr int kSortingAlgorithmThreshold = 12288;", after=after))
    if split:
        consts.append(c.w(SM, "int multipleBlocksPerRowConfig = 10;", after=after))
    return consts


def _topk_buffers(cols: int, split: bool) -> list[Buffer]:
    """Logits and sequence lengths; the split path writes per-block partials, the others the indices."""
    aux = f"(size_t)numRows * {SPLIT_BLOCKS} * topK"
    buffers = [
        Buffer("logits", "float", "(size_t)numRows * numColumns", uniform(-8.0, 8.0), "in",
               "[numRows, numColumns] fp32 indexer scores"),
        Buffer("seqLens", "int", "numRows", const(float(cols)), "in",
               "[batch] every sequence at the full context numColumns"),
    ]
    if split:
        buffers += [
            Buffer("outIndicesAux", "int", aux, zero(), "out", "[numRows, multipleBlocksPerRowConfig, topK]"),
            Buffer("outLogitsAux", "float", aux, zero(), "out", "[numRows, multipleBlocksPerRowConfig, topK]"),
        ]
    else:
        buffers.append(Buffer("indices", "int", "(size_t)numRows * topK", zero(), "out", "[numRows, topK]"))
    return buffers


def topk_per_row_decode(c: Ctx) -> Plan:
    d = c.dims
    cols = _num_columns(c)
    after = _line(c, "void top_k_per_row_decode(")
    split = cols >= SPLIT_THRESHOLD
    radix = cols >= SORT_THRESHOLD
    consts = _topk_consts(c, cols, after, split, radix)
    derived = [Stmt("const int64_t numRows = numRows_ll;", "vkc: decode batch x next_n logits rows")]
    buffers = _topk_buffers(cols, split)
    if split:
        targs: tuple[str, ...] = ("kNumThreadsPerBlock", "true", "true")
        launch_text = ("vllm::topKPerRowDecode<kNumThreadsPerBlock, true, true> <<<dim3(numRows, "
                       "multipleBlocksPerRowConfig), kNumThreadsPerBlock, 2 * topK * sizeof(int32_t), stream>>>(")
        grid, smem = "dim3((unsigned)numRows, multipleBlocksPerRowConfig)", "2 * topK * sizeof(int32_t)"
        args: tuple[str, ...] = ("logits", "seqLens", "outIndicesAux", "static_cast<int>(stride0)",
                                 "static_cast<int>(stride1)", "static_cast<int>(topK)", "static_cast<int>(next_n)",
                                 "seqLensIs2D", "outLogitsAux")
        path = "numColumns >= kSplitWorkThreshold: split pass <512, true, true> (then a merge launch)"
        checks = (Check("numColumns >= kSplitWorkThreshold", cpp_str("wrapper takes the two-step split path")),)
    else:
        targs = ("kNumThreadsPerBlock", "true" if radix else "false")
        launch_text = (f"vllm::topKPerRowDecode<kNumThreadsPerBlock, {targs[1]}> <<<numRows, kNumThreadsPerBlock, "
                       "topK * sizeof(int32_t), stream>>>(")
        grid, smem = "dim3((unsigned)numRows)", "topK * sizeof(int32_t)"
        args = ("logits", "seqLens", "indices", "static_cast<int>(stride0)", "static_cast<int>(stride1)",
                "static_cast<int>(topK)", "static_cast<int>(next_n)", "seqLensIs2D")
        cond = ("numColumns >= kSortingAlgorithmThreshold && numColumns < kSplitWorkThreshold" if radix
                else "numColumns < kSortingAlgorithmThreshold")
        path = ("kSortingAlgorithmThreshold <= numColumns < kSplitWorkThreshold: radix sort <512, true>" if radix
                else "numColumns < kSortingAlgorithmThreshold: insertion sort <512, false>")
        checks = (Check(cond, cpp_str(f"wrapper picks {path.split(': ')[1]}")),)
    launch = (Stmt(f"// launch: {' '.join(launch_text.split())}", c.at(SM, launch_text, after=after)),)
    per_row = "(size_t)numColumns * 4 + 4 + " + (f"(size_t){SPLIT_BLOCKS} * topK * 8" if split else "(size_t)topK * 4")
    notes = [
        ("vLLM 0.33.0 runs top_k_per_row_decode only in the DeepSeek-V3.2 sparse-attention (DSA) indexer "
        "(vllm/model_executor/layers/indexer_topk.py, backend per_row): logits [batch * next_n, max_model_len], "
        f"top-k = index_topk; for {d.model_id} the rows are sized as that indexer would size them "
        "(row width = the model's max context, top-k 2048, next_n 1)"),
    ]
    if split:
        notes.append("rows >= 200000 wide take the two-step path; this program times the first (split) launch; "
                     "the merge launch topKPerRowDecode<1024, true, false, true> reads outLogitsAux/outIndicesAux")
    return Plan(
        kernel_symbol="vllm::topKPerRowDecode", template_args=tuple(
            "512" if t == "kNumThreadsPerBlock" else t for t in targs),
        consts=tuple(consts),
        scale=Scale("numRows_ll", per_row, small=4, maximum=cpp_int(SAMPLER_MAX_SEQS),
                    note="fp32 logits row + seq len + output indices per row"),
        derived=tuple(derived), buffers=tuple(buffers), launch_stmts=launch, checks=checks,
        grid=grid, block="dim3(kNumThreadsPerBlock)", smem=smem, args=args,
        bytes_moved="4.0 * numRows * numColumns + 4.0 * numRows * topK",
        dispatch=f"top_k_per_row_decode: numColumns = {cols}: {path}",
        wrapper=f"{c.at(SM, 'void top_k_per_row_decode(')} (top_k_per_row_decode)",
        grid_expr="dim3(numRows, multipleBlocksPerRowConfig = 10)" if split else "numRows",
        block_expr="kNumThreadsPerBlock = 512",
        smem_expr="2 * topK * sizeof(int32_t)" if split else "topK * sizeof(int32_t)",
        notes=tuple(notes),
    )


RECIPES = (
    cuda_recipe((f"{SM}:apply_repetition_penalties_kernel",), repetition_penalties, workloads=("decode", "prefill"),
                default_workload="decode", family=Family.SAMPLER),
    cuda_recipe((f"{SM}:topKPerRowDecode",), topk_per_row_decode, workloads=("decode",), default_workload="decode",
                family=Family.SAMPLER),
)
