"""Sources vLLM's build generates: its own generator scripts, run the way its CMake runs them.

vLLM's ``CMakeLists.txt`` runs Python generators at configure time (``execute_process(COMMAND ...
${Python_EXECUTABLE} ${SCRIPT} ${CUDA_ARCHS_STR} [out dir])``): the Marlin GEMMs' ``kernel_selector.h``
and ``sm*_kernel_*.cu`` come from ``csrc/quantization/marlin/generate_kernels.py``, once into its own
folder and once into ``csrc/moe/marlin_moe_wna16``.  :func:`generated_files` finds those commands,
runs each script in a subprocess on a temporary copy (the tree is never written), with the arguments
CMake passes for vkc's H100 (``CUDA_ARCHS_STR`` = ``9.0``), and keeps the outputs in
``$VKC_CACHE_DIR/generated/`` keyed by the tree and the script's bytes.  The extractor
(:func:`vkc.extract.cuda.unit.build_unit`) resolves a quoted include that the tree lacks against them.

Only what the command line names is mirrored: a command with a CMake variable other than
``CMAKE_CURRENT_SOURCE_DIR`` / ``CUDA_ARCHS_STR`` is not run (its headers stay missing, and the
extractor's refusal says so).  The CMake conditions around the command (``if (MARLIN_OTHER_ARCHS)``)
are not evaluated: a generator only matters when a unit includes what it writes.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CUDA_ARCHS_STR", "Generated", "GeneratedFile", "generated_files", "generators"]

# CMake's ``list(JOIN CUDA_ARCHS "," CUDA_ARCHS_STR)`` for an H100-only build (TORCH_CUDA_ARCH_LIST=9.0)
CUDA_ARCHS_STR = "9.0"
_TIMEOUT_S = 300

_EXEC = re.compile(r"execute_process\s*\((.*?)\n\s*\)", re.S)
_PY = re.compile(r"\$\{Python_EXECUTABLE\}\s+(.*?)(?:\n\s*(?:RESULT_VARIABLE|OUTPUT_VARIABLE|OUTPUT_FILE|"
                 r"ERROR_FILE|WORKING_DIRECTORY)\b|$)", re.S)
_SET = re.compile(r"set\s*\(\s*(\w+)\s+\$\{CMAKE_CURRENT_SOURCE_DIR\}/([^\s)]+)\s*\)")
_VAR = re.compile(r"\$\{(\w+)\}")
_SRC = "${CMAKE_CURRENT_SOURCE_DIR}"


@dataclass(frozen=True)
class Generator:
    script: str                  # tree-relative path of the generator
    args: tuple[str, ...]        # CMake's arguments, ``${CMAKE_CURRENT_SOURCE_DIR}`` kept symbolic
    cmake_line: int              # line of the ``${Python_EXECUTABLE}`` command in CMakeLists.txt

    @property
    def command(self) -> str:
        shown = [a.replace(_SRC + "/", "").replace(_SRC, ".") for a in self.args]
        return (f"python {self.script} {' '.join(shown)} (vLLM's CMakeLists.txt:{self.cmake_line}, "
                "run by vkc in a temporary copy)")


@dataclass(frozen=True)
class GeneratedFile:
    rel: str                     # where the build puts it, tree-relative (csrc/quantization/marlin/kernel_selector.h)
    path: Path                   # the cached copy
    command: str                 # the generator command that wrote it


@dataclass(frozen=True)
class Generated:
    files: dict[str, GeneratedFile]
    failures: tuple[str, ...]    # "script: why" for a generator that could not run


def generators(root: Path) -> list[Generator]:
    """The Python generators ``CMakeLists.txt`` runs with ``execute_process``, arguments substituted."""
    try:
        text = (root / "CMakeLists.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    scripts = {m.group(1): m.group(2) for m in _SET.finditer(text)}
    out: list[Generator] = []
    for m in _EXEC.finditer(text):
        py = _PY.search(m.group(1))
        if py is None:
            continue
        words = py.group(1).split()
        var = _VAR.fullmatch(words[0]) if words else None
        if var is None or var.group(1) not in scripts:
            continue
        args = tuple(w.replace("${CUDA_ARCHS_STR}", CUDA_ARCHS_STR) for w in words[1:])
        if any(v != "CMAKE_CURRENT_SOURCE_DIR" for a in args for v in _VAR.findall(a)):
            continue
        line = text.count("\n", 0, m.start(1) + py.start()) + 1
        out.append(Generator(scripts[var.group(1)], args, line))
    return out


def generated_files(root: Path) -> Generated:
    """Every file the tree's generators write (tree-relative path -> cached copy), run once per key."""
    return _generated(str(Path(root).resolve()))


@functools.lru_cache(maxsize=8)
def _generated(root_s: str) -> Generated:
    root = Path(root_s)
    files: dict[str, GeneratedFile] = {}
    failures: list[str] = []
    for gen in generators(root):
        got = _run_cached(root, gen)
        if isinstance(got, str):
            failures.append(f"{gen.script}: {got}")
            continue
        for rel, path in got.items():
            files.setdefault(rel, GeneratedFile(rel, path, gen.command))
    return Generated(files, tuple(failures))


def _key(root: Path, gen: Generator) -> str:
    h = hashlib.sha256()
    h.update(str(root).encode() + b"\0")
    h.update((root / gen.script).read_bytes())
    h.update("\0".join(gen.args).encode())
    return h.hexdigest()[:24]


def _run_cached(root: Path, gen: Generator) -> dict[str, Path] | str:
    from vkc.source.fetch import cache_dir

    try:
        key = _key(root, gen)
    except OSError as e:
        return f"cannot read the script ({e})"
    home = cache_dir() / "generated" / key
    manifest = home / "manifest.json"
    if manifest.is_file():
        done = json.loads(manifest.read_text())
        return done["failure"] if done.get("failure") else {r: home / "files" / r for r in done["files"]}
    with tempfile.TemporaryDirectory(prefix="vkc-gen-") as tmp:
        got = _run(root, gen, Path(tmp))
        stage = home.with_name(home.name + f".tmp{os.getpid()}")
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        failure = got if isinstance(got, str) else ""
        got = [] if isinstance(got, str) else got
        for rel in got:
            dst = stage / "files" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / rel, dst)
        # a failure is kept too (the key is the script's bytes): the machete generator needs CUTLASS's
        # Python library, which vLLM's CMake puts on PYTHONPATH
        (stage / "manifest.json").write_text(json.dumps(
            {"command": gen.command, "files": sorted(got), "failure": failure}, indent=1))
        try:
            stage.rename(home)
        except OSError:          # another process stored it first
            shutil.rmtree(stage, ignore_errors=True)
    return failure or {r: home / "files" / r for r in sorted(got)}


def _run(root: Path, gen: Generator, tmp: Path) -> list[str] | str:
    """Run ``gen`` on a copy of its script under ``tmp`` (``${CMAKE_CURRENT_SOURCE_DIR}`` = ``tmp``)."""
    script = tmp / gen.script
    script.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / gen.script, script)
    args = [a.replace(_SRC, str(tmp)) for a in gen.args]
    for a in args:
        if a.startswith(str(tmp)):
            Path(a).mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([sys.executable, str(script), *args], cwd=tmp, capture_output=True, text=True,
                              timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"did not run ({type(e).__name__}: {e})"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"exited {done.returncode}: {tail[0][:200]}"
    return sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file() and p != script)
