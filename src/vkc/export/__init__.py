"""Export stage: ``vkc export DIR --format jsonl|parquet`` (one flat row per artifact)."""
from vkc.export.export import COLUMNS, export_dir, export_rows
from vkc.export.provenance import Provenance, parse_provenance

__all__ = ["COLUMNS", "Provenance", "export_dir", "export_rows", "parse_provenance"]
