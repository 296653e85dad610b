"""One escaping layer: hostile text from the user's inputs never leaves its comment or literal.

Every filter of :mod:`vkc.templating` and the provenance header are fed hostile values; then a real
``collect`` runs with a model path whose folder name tries to close the docstring and run code,
and the generated examples are checked token by token (Python) and line by line (C++).
"""
from __future__ import annotations

import ast
import io
import json
import shutil
import tokenize
from pathlib import Path

import pytest

from vkc.invoke.core.header import header_lines
from vkc.templating import ccomment, cstr, environment

MARK = "VKC_PWNED"
HOSTILE = [
    f'"""\nimport os; os.system("touch {MARK}")\n"""',
    f"'''\n{MARK}()\n'''",
    f"x\\\n{MARK} = 1",
    f"*/ {MARK}(); /*",
    f'"; {MARK}(); "',
    f"line\r\n{MARK}()\u2028{MARK}\x0b{MARK}",
    f"\\{MARK}\\",
    f'{MARK}"""',
    f'{MARK}""',
]


def _marker_only_in_comments_or_strings(code: str) -> None:
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if MARK in tok.string:
            assert tok.type in (tokenize.COMMENT, tokenize.STRING), (tok, code)


@pytest.mark.parametrize("value", HOSTILE)
def test_python_filters(value):
    src = environment().from_string(
        '"""Doc {{ v | pydoc }} end."""\n# {{ v | pycomment }}\nX = {{ v | pystr }}\nY = {{ v | py }}\n')
    code = src.render(v=value)
    tree = ast.parse(code)
    assert [type(n).__name__ for n in tree.body] == ["Expr", "Assign", "Assign"]
    assert tree.body[1].value.value == value and tree.body[2].value.value == value
    _marker_only_in_comments_or_strings(code)


@pytest.mark.parametrize("value", HOSTILE)
def test_cxx_filters(value):
    line = f"// {ccomment(value)}"
    assert "\n" not in line and "\r" not in line and not line.endswith("\\")
    lit = cstr(value)
    assert lit.startswith('"') and lit.endswith('"') and "\n" not in lit
    inner = lit[1:-1].replace("\\\\", "").replace('\\"', "")
    assert '"' not in inner


@pytest.mark.parametrize("comment", ["#", "//"])
def test_header_lines_stay_comments(comment):
    lines = header_lines([("model", v) for v in HOSTILE] + [("notes", HOSTILE)], comment)
    for ln in lines:
        assert ln.startswith(comment + " ")
        assert comment == "#" or not ln.endswith("\\")  # a C++ line splice; harmless in Python
        assert not any(c in ln for c in "\r\n\x0b\x0c\u2028")
    if comment == "#":
        _marker_only_in_comments_or_strings("\n".join(lines) + "\n")


def _hostile_model(tmp_path: Path) -> Path:
    src = Path(__file__).resolve().parents[2] / "src" / "vkc" / "modelcfg" / "snapshots"
    snap = next(p for p in sorted(src.rglob("*.json")) if "Llama-3.1-8B" in p.name or "Llama-3.1-8B" in str(p.parent))
    folder = tmp_path / f'm"""\nimport os; os.system("touch {MARK}")\n"""'
    folder.mkdir()
    data = json.loads(snap.read_text())
    data = data.get("config", data)
    (folder / "config.json").write_text(json.dumps(data))
    return folder / "config.json"


@pytest.mark.sdist
@pytest.mark.parametrize("kernel, lang", [
    ("vllm.model_executor.layers.fused_moe.fused_moe:write_zeros_to_output", "triton"),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", "cuda"),
])
def test_hostile_model_path_stays_data(vllm_tree, tmp_path, kernel, lang):
    from vkc.pipeline import collect
    model = _hostile_model(tmp_path)
    out = tmp_path / "out"
    w = collect(kernel, model=str(model), out_dir=out, vllm_path=str(vllm_tree.root),
                command=f"vkc collect {kernel} --model {model}")
    art = json.loads(Path(w.path).read_text())
    code = art["kernel"]["invocation_example"]
    assert MARK in code  # the path is reported ...
    if lang == "triton":
        ast.parse(code)
        _marker_only_in_comments_or_strings(code)  # ... but only as data
    else:
        for ln in code.splitlines():
            if MARK in ln:
                s = ln.strip()
                assert s.startswith("//") or s.count('"') >= 2, ln
    assert not list(tmp_path.rglob(MARK)) and not (Path.cwd() / MARK).exists()
    shutil.rmtree(out)
