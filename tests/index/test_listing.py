"""format_list: text lines and the stable ``vkc list --json`` output."""
from __future__ import annotations

import json

import pytest
from index_testutil import CASES, case_tree

from vkc.errors import UsageError
from vkc.index import build_index, format_list
from vkc.records import KernelEntry

FIELDS = ["lang", "name", "qualname", "file", "line", "end_line", "module", "role", "decorators",
          "template_params", "rocm_only", "launch_sites", "qualified"]


@pytest.fixture(scope="module")
def index():
    return build_index(case_tree("forms"), use_cache=False)


def test_text_lines(index):
    lines = format_list(index).splitlines()
    assert len(lines) == len(index.kernels)
    assert "triton entry vllm.ops.kernels:grid_kernel  vllm/ops/kernels.py:17" in lines
    assert "triton helper vllm.ops.kernels:helper_fn  vllm/ops/kernels.py:12" in lines
    assert lines == sorted(lines, key=lambda s: (s.split()[0], s.split()[2]))


def test_filters(index):
    assert format_list(index, role="orphan") == "triton orphan vllm.ops.kernels:orphan_kernel  vllm/ops/kernels.py:22"
    assert format_list(index, lang="cuda") == ""
    assert len(format_list(index, role="entry").splitlines()) == 17
    with pytest.raises(UsageError):
        format_list(index, role="kernel")
    with pytest.raises(UsageError):
        format_list(index, lang="rust")


def test_json_fields_and_order(index):
    data = json.loads(format_list(index, as_json=True))
    assert [d["qualified"] for d in data] == sorted(d["qualified"] for d in data)
    for d in data:
        assert list(d) == FIELDS
        # every field, declared order; the optional platform_note (last) only when set
        assert list(d) + ["platform_note"] == [f for f in KernelEntry.__dataclass_fields__]
        for s in d["launch_sites"]:
            assert list(s) == ["file", "line", "wrapper", "form", "text"]


@pytest.mark.parametrize("case", ["forms", "platform", "crossmod"])
def test_json_golden(case, golden):
    text = format_list(build_index(case_tree(case), use_cache=False), as_json=True)
    golden(CASES / case / "list.json", text + "\n")
