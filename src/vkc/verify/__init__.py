"""Verify stage: the spec's acceptance rubric (static) plus optional compile/run checks."""
from vkc.verify.driver import all_ok, expand_paths, format_results, verify_paths
from vkc.verify.result import CheckResult
from vkc.verify.rubric import CHECK_IDS, check_artifact

__all__ = ["CHECK_IDS", "CheckResult", "all_ok", "check_artifact", "expand_paths", "format_results", "verify_paths"]
