"""Batch runs: ``vkc collect --all`` and ``vkc verify`` over many artifacts.

* :func:`collect_all`: every entry kernel (x model x workload) in isolated worker processes;
* :func:`verify_many`: static checks, parallel compiles, one-at-a-time runs with timeouts;
* :mod:`vkc.batch.cli_hooks`: the flags and CLI entry points.
"""
from vkc.batch.collect_all import BatchReport, collect_all, format_summary
from vkc.batch.plan import Job, collect_name, model_slug, plan_jobs
from vkc.batch.verify_many import expand_artifacts, verify_many

__all__ = ["BatchReport", "Job", "collect_all", "collect_name", "expand_artifacts", "format_summary",
           "model_slug", "plan_jobs", "verify_many"]
