"""Release-specific start-up stubs (issue 14): read from the tree at hand, on small fixture trees.

0.33.0's ``vllm/platforms/cuda.py`` imports ``vllm._C_stable_libtorch`` only; 0.20.0's (line 21) and
0.11.0's (line 18) import ``vllm._C`` too, which the trace workers used not to stub, so every trace on
them failed.  0.11.0's ``vllm/utils/__init__.py:62`` imports ``setproctitle`` at module level.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vkc.modeltrace.release_stubs import compiled_extension_imports, deps_for, version_key

_PLATFORM_020 = '''\
import torch
# import custom ops, trigger op registration
import vllm._C  # noqa
import vllm._C_stable_libtorch  # noqa
import vllm.envs as envs
from vllm import _custom_ops as ops
from vllm.logger import init_logger


def f():
    import vllm._moe_C  # inside a function: not run on import
'''


def _tree(root: Path, platform: str, extra: dict[str, str] | None = None) -> Path:
    files = {"vllm/__init__.py": "", "vllm/envs.py": "", "vllm/logger.py": "init_logger = print\n",
             "vllm/_custom_ops.py": "", "vllm/platforms/__init__.py": "", "vllm/platforms/cuda.py": platform,
             **(extra or {})}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_compiled_extensions_are_the_imports_without_source(tmp_path):
    tree = _tree(tmp_path, _PLATFORM_020)
    # _custom_ops has a .py file (shipped), _moe_C is imported inside a function only
    assert compiled_extension_imports(tree) == ("vllm._C", "vllm._C_stable_libtorch")


def test_a_0_33_style_platform_needs_only_the_stable_extension(tmp_path):
    tree = _tree(tmp_path, "import vllm._C_stable_libtorch  # noqa\nimport vllm.envs as envs\n")
    assert compiled_extension_imports(tree) == ("vllm._C_stable_libtorch",)


def test_no_platform_file_no_stubs(tmp_path):
    (tmp_path / "vllm").mkdir()
    assert compiled_extension_imports(tmp_path) == ()


@pytest.mark.parametrize(("version", "deps"), [("0.11.0", ("setproctitle", "blake3", "gguf")),
                                                ("0.11.2", ("setproctitle", "blake3", "gguf")),
                                                ("0.20.0", ("gguf",)), ("0.21.0", ()), ("0.33.0", ()), ("local", ())])
def test_pure_python_deps_per_release_range(version, deps):
    assert deps_for(version) == deps


def test_version_key():
    assert version_key("0.11.0") == (0, 11, 0)
    assert version_key("0.20.0rc1") == (0, 20, 0)
    assert version_key("0.8.5.post1+cu128") == (0, 8, 5)
    assert version_key("local") == ()


def test_the_platform_imports_in_a_fresh_process_with_the_stubs(tmp_path):
    """What the worker does: the stubs first, then the release's platform module and utils import."""
    tree = _tree(tmp_path / "src", _PLATFORM_020,
                 {"PKG-INFO": "Metadata-Version: 2.1\nName: vllm\nVersion: 0.11.0\n",
                  "vllm/utils/__init__.py": "import setproctitle\n\ndef name(p):\n    setproctitle.setproctitle(p)\n"})
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tree)!r})
        try:
            import vllm.platforms.cuda
        except ImportError as e:
            print("before:", e.name)
        from vkc.modeltrace.release_stubs import install_release_stubs
        made = install_release_stubs()
        import vllm.platforms.cuda, vllm.utils
        vllm.utils.name("x")
        from gguf.constants import Keys                 # 0.20.0's gguf_utils.py:11
        print("made:", made, type(Keys).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "before: vllm._C" in out
    missing = [n for n in ("setproctitle", "blake3", "gguf") if importlib.util.find_spec(n) is None]
    assert f"made: {missing}" in out        # an installed package is used as it is, no stand-in
