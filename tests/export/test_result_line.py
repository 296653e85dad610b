"""The RESULT line's timing-protocol fields (issue 13: benchmark-grade timing) are parsed and kept."""
from __future__ import annotations

from vkc.result_line import parse_result_line


def test_protocol_fields():
    line = ("RESULT kernel=k model=m workload=decode config=FULL time_ms=0.0123 GB/s=3012.5 bytes=37054464 "
            "dtype=bfloat16 gpu=NVIDIA_H200 stat=median warmup=10 reps=100 l2_flush_MiB=120")
    r = parse_result_line(line)
    assert r is not None
    assert (r["gbps"], r["bytes"], r["dtype"], r["gpu"]) == (3012.5, 37054464.0, "bfloat16", "NVIDIA_H200")
    assert (r["stat"], r["warmup"], r["reps"], r["l2_flush_mib"]) == ("median", 10, 100, 120.0)


def test_lines_from_before_the_protocol_still_parse():
    r = parse_result_line("RESULT kernel=k model=m workload=decode config=SMALL time_ms=1.5 GB/s=2")
    assert r is not None and r["time_ms"] == 1.5 and r["reps"] is None and r["gpu"] is None
