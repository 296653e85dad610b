"""Report stage: ``vkc report DIR`` writes DIR/report.{md,json,html} (coverage, GPU results, fidelity)."""
from vkc.report.build import H100_PEAK, H200_PEAK, build_report, peak_for
from vkc.report.family import FAMILY_RULES, family_of
from vkc.report.render import render, write_report

__all__ = ["FAMILY_RULES", "H100_PEAK", "H200_PEAK", "build_report", "family_of", "peak_for", "render", "write_report"]
