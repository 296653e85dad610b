"""modinfo.lazy_globals: a module constant that is None until a function's ``if X is None: X = value`` sets it
(UltraQuant's ``_MIDPOINTS_C``, vllm/v1/attention/ops/ultraquant/triton_store.py:53-59) binds to that value."""
from __future__ import annotations

import ast
import textwrap

from vkc.extract.triton import modinfo


def _info(tmp_path, text):
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent(text))
    info = modinfo.load(tmp_path, "m")
    modinfo.walk(info, info.tree.body, lambda t: None)
    modinfo.lazy_globals(info)
    return info


def test_the_lazy_initialiser_binds_the_constant(tmp_path):
    info = _info(tmp_path, """
        LEVELS = (1.0, 2.0)
        _C = None
        _D: int = None

        def _ensure():
            global _C
            if _C is None:
                _C = tuple(LEVELS)
        """)
    b = info.bindings["_C"]
    assert ast.unparse(b.value) == "tuple(LEVELS)" and b.note.startswith("set lazily by _ensure at m.py:")
    assert isinstance(info.bindings["_D"].value, ast.Constant)       # no initialiser: stays None


def test_another_assignment_leaves_it_none(tmp_path):
    info = _info(tmp_path, """
        _C = None

        def _ensure():
            global _C
            if _C is None:
                _C = 1

        def _reset():
            global _C
            _C = 2
        """)
    v = info.bindings["_C"].value
    assert isinstance(v, ast.Constant) and v.value is None


def test_a_plain_rebinding_without_the_idiom_is_not_taken(tmp_path):
    info = _info(tmp_path, """
        _C = None

        def _set(x):
            global _C
            _C = x
        """)
    assert info.bindings["_C"].value.value is None
