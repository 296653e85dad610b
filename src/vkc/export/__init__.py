"""Export stage: ``vkc export DIR --format jsonl|parquet`` (one flat row per artifact),
``--format kernelbench`` (KernelBench tasks) and ``--format flashinfer-trace`` (a FlashInfer-Trace
dataset) of the Triton artifacts whose examples carry a reference."""
from vkc.export.export import COLUMNS, export_dir, export_rows
from vkc.export.flashinfer import export_flashinfer
from vkc.export.kernelbench import export_kernelbench
from vkc.export.provenance import Provenance, parse_provenance

__all__ = ["COLUMNS", "Provenance", "export_dir", "export_flashinfer", "export_kernelbench", "export_rows",
           "parse_provenance"]
