"""Report stage: ``vkc report DIR`` writes DIR/report.{md,json,html} (coverage, GPU results, fidelity)."""
from vkc.report.build import H100_PEAK, build_report
from vkc.report.family import FAMILY_RULES, family_of
from vkc.report.render import render, write_report

__all__ = ["FAMILY_RULES", "H100_PEAK", "build_report", "family_of", "render", "write_report"]
