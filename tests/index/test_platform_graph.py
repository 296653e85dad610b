"""Platform-only modules (vkc.index.platform_graph) on small synthetic package trees."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vkc.index.platform_graph import classify, platform_only_modules
from vkc.index.platform_sites import evaluate, import_sites
from vkc.index.triton_files import list_modules
from vkc.index.triton_scan import run_scan
from vkc.records import SourceTree

KERNEL = """\
import triton
import triton.language as tl


@triton.jit
def {name}(x_ptr):
    tl.store(x_ptr, 1)


def launch(x):
    {name}[(1,)](x)
"""

ENTRY = "from vllm.models.m import Model\n"           # a CUDA entry point using the model package


def write_tree(root: Path, files: dict[str, str]) -> SourceTree:
    for rel, text in {"vllm/__init__.py": "", "vllm/platforms.py": "current_platform = None\n",
                      "vllm/entry.py": ENTRY, **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return SourceTree(root=root, version="local", origin=str(root))


def platform_only(tree: SourceTree) -> dict[str, str]:
    paths = list_modules(tree.root)
    texts = {m: (tree.root / rel).read_text() for m, rel in paths.items()}
    pkgs = {m for m, rel in paths.items() if rel.endswith("/__init__.py")}
    return platform_only_modules(paths, texts, pkgs)


def kernels(tree: SourceTree) -> dict[str, bool]:
    return {e.qualified: e.rocm_only for e in run_scan(tree).entries}


INKLING = """\
from typing import TYPE_CHECKING

from vllm.platforms import current_platform

if TYPE_CHECKING:
    if current_platform.is_rocm():
        from .amd.model import Model
    else:
        from .nvidia.model import Model


def __getattr__(name):
    if name == "Model":
        if current_platform.is_rocm():
            from .amd import model as amd_model

            return amd_model.Model

        from .nvidia import model as nvidia_model

        return nvidia_model.Model
    raise AttributeError(name)
"""


def test_inkling_getattr(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/models/__init__.py": "", "vllm/models/m/__init__.py": INKLING,
        "vllm/models/m/amd/__init__.py": "", "vllm/models/m/nvidia/__init__.py": "",
        "vllm/models/m/amd/model.py": KERNEL.format(name="amd_kernel") + "class Model: ...\n",
        "vllm/models/m/nvidia/model.py": KERNEL.format(name="nv_kernel") + "class Model: ...\n",
    })
    plat = platform_only(tree)
    assert sorted(plat) == ["vllm.models.m.amd", "vllm.models.m.amd.model"]
    assert "`current_platform.is_rocm()` in vllm.models.m" in plat["vllm.models.m.amd.model"]
    assert kernels(tree) == {"vllm.models.m.amd.model:amd_kernel": True,
                             "vllm.models.m.nvidia.model:nv_kernel": False}
    amd = next(e for e in run_scan(tree).entries if e.name == "amd_kernel")
    assert amd.platform_note.startswith("vllm.models.m.amd.model is imported only under")


MINIMAX = """\
from typing import TYPE_CHECKING

from vllm.platforms import current_platform

if TYPE_CHECKING or not current_platform.is_rocm():
    from .nvidia.model import Model
else:
    from .amd.model import Model
"""


def test_type_checking_or_not_rocm(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/models/__init__.py": "", "vllm/models/m/__init__.py": MINIMAX,
        "vllm/models/m/amd/model.py": KERNEL.format(name="amd_kernel"),
        "vllm/models/m/nvidia/model.py": KERNEL.format(name="nv_kernel"),
    })
    assert sorted(platform_only(tree)) == ["vllm.models.m.amd.model"]


DEEPSEEK = """\
from vllm.platforms import current_platform

if current_platform.is_rocm():
    from .amd.model import Model
elif current_platform.is_xpu():
    from .xpu.model import Model
elif current_platform.is_cpu():
    from .cpu.model import Model
else:
    from .nvidia.model import Model
"""


def test_elif_xpu(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/models/__init__.py": "", "vllm/models/m/__init__.py": DEEPSEEK,
        **{f"vllm/models/m/{p}/model.py": KERNEL.format(name=f"{p}_kernel") for p in ("amd", "xpu", "cpu", "nvidia")},
    })
    plat = platform_only(tree)
    assert sorted(plat) == ["vllm.models.m.amd.model", "vllm.models.m.cpu.model", "vllm.models.m.xpu.model"]
    assert "is_xpu()" in plat["vllm.models.m.xpu.model"]
    assert kernels(tree) == {f"vllm.models.m.{p}.model:{p}_kernel": p != "nvidia"
                             for p in ("amd", "xpu", "cpu", "nvidia")}


def test_unguarded_import_elsewhere_keeps_cuda(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/models/__init__.py": "", "vllm/models/m/__init__.py": DEEPSEEK,
        **{f"vllm/models/m/{p}/model.py": KERNEL.format(name=f"{p}_kernel") for p in ("amd", "xpu", "cpu", "nvidia")},
        # a lazy, unguarded import from a CUDA module: amd.model is reachable on CUDA
        "vllm/layers/moe.py": "def f():\n    from vllm.models.m.amd.model import launch\n    return launch\n",
        "vllm/entry2.py": "import vllm.layers.moe\n",
    })
    plat = platform_only(tree)
    assert "vllm.models.m.amd.model" not in plat and "vllm.models.m.xpu.model" in plat
    assert kernels(tree)["vllm.models.m.amd.model:amd_kernel"] is False


def test_transitive_amd_imports(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/models/__init__.py": "", "vllm/models/m/__init__.py": MINIMAX,
        "vllm/models/m/nvidia/model.py": "class Model: ...\n",
        # amd.model -> amd.ops (package) -> amd.ops.kern, and back (a cycle)
        "vllm/models/m/amd/model.py": "from vllm.models.m.amd.ops import launch\nclass Model: ...\n",
        "vllm/models/m/amd/ops/__init__.py": "from .kern import launch\n",
        "vllm/models/m/amd/ops/kern.py": KERNEL.format(name="amd_kernel") + "from .. import model\n",
        # shared code the amd modules import: CUDA imports it too
        "vllm/models/m/common.py": "X = 1\n",
        "vllm/models/m/amd/helpers.py": "from vllm.models.m.common import X\n",
        "vllm/entry3.py": "from vllm.models.m.common import X\n",
        # only ever loaded by a computed name: inside the platform-only package, so platform-only
        "vllm/models/m/amd/ops/lazy.py": KERNEL.format(name="lazy_kernel"),
    })
    plat = platform_only(tree)
    assert {"vllm.models.m.amd.model", "vllm.models.m.amd.ops", "vllm.models.m.amd.ops.kern",
            "vllm.models.m.amd.ops.lazy"} <= set(plat)
    assert "vllm.models.m.common" not in plat and "vllm.models.m" not in plat
    assert "imported only by platform-only modules" in plat["vllm.models.m.amd.ops.kern"]
    assert plat["vllm.models.m.amd.ops.lazy"].startswith("in the platform-only package vllm.models.m.amd")
    assert kernels(tree) == {"vllm.models.m.amd.ops.kern:amd_kernel": True,
                             "vllm.models.m.amd.ops.lazy:lazy_kernel": True}


def test_never_imported_stays_cuda(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/ops/__init__.py": "", "vllm/ops/rocm_only_name.py": KERNEL.format(name="k"),
        # imported only under TYPE_CHECKING: no runtime import, so it may be an entry point
        "vllm/ops/typed.py": KERNEL.format(name="t"),
        "vllm/user.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vllm.ops.typed import k\n",
    })
    assert platform_only(tree) == {}


def test_import_module_literal_and_early_return(tmp_path):
    tree = write_tree(tmp_path, {
        "vllm/ops/__init__.py": "", "vllm/ops/a.py": "", "vllm/ops/b.py": "", "vllm/ops/c.py": "",
        "vllm/user.py": """\
            import importlib
            from vllm.platforms import current_platform


            def pick():
                if not current_platform.is_rocm():
                    return importlib.import_module("vllm.ops.a")
                from vllm.ops import b
                return importlib.import_module(".c", package="vllm.ops")
            """,
    })
    plat = platform_only(tree)
    assert sorted(plat) == ["vllm.ops.b", "vllm.ops.c"]
    assert "`current_platform.is_rocm()`" in plat["vllm.ops.b"]


@pytest.mark.parametrize("test, cuda, anywhere", [
    ("current_platform.is_rocm()", False, None),
    ("not current_platform.is_rocm()", True, None),
    ("TYPE_CHECKING", False, False),
    ("TYPE_CHECKING or not current_platform.is_rocm()", True, None),
    ("current_platform.is_rocm() or current_platform.is_cuda()", True, None),
    ("current_platform.is_xpu() and x", False, None),
    ("platform != 'rocm'", True, None),
    ("attn_output.dtype == torch.bfloat16", None, None),     # 'output' is not 'tpu'
    ("HAS_TRITON", None, None),
])
def test_evaluate(test, cuda, anywhere):
    import ast
    assert evaluate(ast.parse(test, mode="eval").body) == (cuda, anywhere)


def test_dead_sites_are_dropped(tmp_path):
    tree = write_tree(tmp_path, {"vllm/ops/__init__.py": "", "vllm/ops/t.py": "",
                                 "vllm/user.py": "import typing\nif typing.TYPE_CHECKING:\n    import vllm.ops.t\n"})
    paths = list_modules(tree.root)
    texts = {m: (tree.root / rel).read_text() for m, rel in paths.items()}
    sites = import_sites(paths, texts, set())
    assert not [s for s in sites if s.dst == "vllm.ops.t"]
    assert classify(sites, paths) == {}


def test_platform_note_round_trips_and_is_optional():
    from vkc.index.serial import entry_from_dict, entry_to_dict
    from vkc.records import KernelEntry
    plain = KernelEntry(lang="triton", name="k", qualname="k", file="vllm/a.py", line=1, end_line=2)
    assert "platform_note" not in entry_to_dict(plain)
    assert entry_from_dict(entry_to_dict(plain)) == plain                 # files without the key read
    noted = KernelEntry(lang="triton", name="k", qualname="k", file="vllm/a.py", line=1, end_line=2,
                        rocm_only=True, platform_note="vllm.a is imported only under `is_xpu()` in vllm.b")
    d = entry_to_dict(noted)
    assert list(d)[-1] == "platform_note" and entry_from_dict(d) == noted
