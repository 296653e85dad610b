"""Write stage: the artifact schema, the atomic writer and kernel-name -> file mapping."""
from vkc.naming import check_kernel_name, safe_stem
from vkc.write.schema import artifact_schema, schema_error
from vkc.write.writer import prepare_out_dir, read_artifact, write_artifact

__all__ = ["artifact_schema", "check_kernel_name", "prepare_out_dir", "read_artifact", "safe_stem", "schema_error", "write_artifact"]
