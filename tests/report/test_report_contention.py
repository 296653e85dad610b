"""A report over ``verify --run --run-jobs N`` results says its times were taken under contention."""
from __future__ import annotations

import json

from vkc.report.build import build_report


def _results(folder, options):
    folder.mkdir()
    (folder / "verify_results.json").write_text(json.dumps({"options": options, "artifacts": [], "summary": {}}))
    return str(folder)


def test_contended_runs_are_flagged(tmp_path):
    d = _results(tmp_path / "a", {"run": True, "run_jobs": 8, "times_under_contention": True})
    assert build_report(d)["inputs"]["times_under_contention"] == 8


def test_serial_runs_are_not(tmp_path):
    d = _results(tmp_path / "b", {"run": True, "run_jobs": 1, "times_under_contention": False})
    assert build_report(d)["inputs"]["times_under_contention"] is None
    d = _results(tmp_path / "c", {"run": True})                        # written before --run-jobs existed
    assert build_report(d)["inputs"]["times_under_contention"] is None
