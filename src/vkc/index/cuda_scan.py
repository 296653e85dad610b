"""Static index of CUDA ``__global__`` kernels under ``csrc/`` (tree-sitter-cuda).

Entry: :func:`scan_cuda`.  ``csrc/cpu/`` is skipped.  Each file is parsed twice, once per
build view (CUDA, ROCm) after build-config conditionals are resolved; kernels found only
in the ROCm view, under ``csrc/rocm/``, or using AMD builtins are ``rocm_only``.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

from vkc.cxx.launches import Launch, enclosing_function
from vkc.cxx.model import CXX_SUFFIXES, FileModel, file_model
from vkc.cxx.text import line_of, paren_args
from vkc.records import KernelEntry, LaunchSite, SourceTree


def csrc_files(tree: SourceTree) -> list[str]:
    """Relative paths of the C++/CUDA sources under csrc/ (csrc/cpu excluded), sorted."""
    base = tree.root / "csrc"
    out = []
    for p in base.rglob("*"):
        if p.is_file() and p.suffix in CXX_SUFFIXES:
            rel = p.relative_to(tree.root).as_posix()
            if not rel.startswith("csrc/cpu/"):
                out.append(rel)
    return sorted(out)


def load_models(tree: SourceTree) -> list[FileModel]:
    return [file_model(str(tree.root), rel) for rel in csrc_files(tree)]


def _resolve(la: Launch, fm: FileModel, names: set[str]) -> list[str]:
    if la.base in names:
        return [la.base]
    if la.macro and la.base in la.macro_params:
        idx = la.macro_params.index(la.base)
        found: list[str] = []
        for m in re.finditer(r"\b" + re.escape(la.macro) + r"\s*\(", fm.text):
            if line_of(fm.text, m.start()) == fm.macros[la.macro][2]:
                continue
            args = paren_args(fm.text, m.end() - 1)
            if idx < len(args):
                b = re.sub(r"^[&(]*\s*", "", args[idx]).split("<")[0].split("::")[-1].strip()
                if b in names and b not in found:
                    found.append(b)
        return found
    # local alias: `auto kernel = ns::k<...>;` or `kernel = cond ? a<..> : b<..>;`
    start = next((s for s, e, _ in fm.functions if s <= la.start < e), None)
    scope = fm.text[start:la.start] if start is not None else ""
    if la.macro:
        scope = fm.macros[la.macro][1]
    found = []
    for m in re.finditer(r"\b" + re.escape(la.base) + r"\s*=\s*([^;]+);", scope):
        for ident in re.findall(r"[A-Za-z_]\w*", m.group(1)):
            if ident in names and ident not in found:
                found.append(ident)
    return found


def _site(la: Launch, form: str | None = None) -> LaunchSite:
    return LaunchSite(file=la.file, line=la.line, wrapper=la.wrapper, form=form or la.form, text=la.text)


def scan_cuda(tree: SourceTree) -> list[KernelEntry]:
    """Every ``__global__`` definition under csrc/ (except csrc/cpu/), with launch sites."""
    models = load_models(tree)
    names = {k.name for fm in models for k in fm.kernels}
    sites: dict[str, list[LaunchSite]] = defaultdict(list)
    for fm in models:
        for la in fm.launches:
            la.kernels = _resolve(la, fm, names)
            for kname in la.kernels:
                sites[kname].append(_site(la))
    # indirect references (kernels passed as values) for kernels with no resolved launch
    unresolved = sorted(n for n in names if n not in sites)
    if unresolved:
        pat = re.compile(r"\b(" + "|".join(map(re.escape, unresolved)) + r")\b")
        for fm in models:
            kspans = [(k.start, k.end) for k in fm.kernels]
            for m in pat.finditer(fm.text):
                if any(s <= m.start() < e for s, e in kspans):
                    continue
                ln = line_of(fm.text, m.start())
                line_text = fm.text.split("\n")[ln - 1].strip()
                if line_text.startswith(("//", "*")):
                    continue
                w = enclosing_function(fm.functions, m.start())
                if w is None and not line_text.startswith("#define"):
                    continue
                if len(sites[m.group(1)]) < 8:
                    sites[m.group(1)].append(LaunchSite(fm.relpath, ln, w, "indirect", line_text))
    out: list[KernelEntry] = []
    for fm in models:
        dup = Counter(k.name for k in fm.kernels)
        for k in fm.kernels:
            q = f"{fm.relpath}:{k.name}" + (f"@{k.line}" if dup[k.name] > 1 else "")
            out.append(KernelEntry(
                lang="cuda", name=k.name, qualname=k.qualname, file=fm.relpath, line=k.line,
                end_line=k.end_line, template_params=k.template_params, rocm_only=k.rocm_only,
                role="entry", launch_sites=tuple(_dedupe(sites.get(k.name, []), fm.relpath)),
                qualified=q))
    return out


def _dedupe(sites: list[LaunchSite], own_file: str) -> list[LaunchSite]:
    seen, out = set(), []
    # same-file launches first: a name defined in several files is launched near its definition
    for s in sorted(sites, key=lambda s: (s.form == "indirect", s.file != own_file, s.file, s.line)):
        key = (s.file, s.line, s.form)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def launch_sites_total(tree: SourceTree) -> Counter:
    """Count of host launch sites by form (the survey's 262)."""
    c: Counter = Counter()
    for fm in load_models(tree):
        for la in fm.launches:
            c["hip" if "hipLaunchKernelGGL" in la.text else la.form] += 1
    return c

