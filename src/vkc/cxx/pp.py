"""Partial preprocessor for a CUDA build of vLLM's csrc.

Only *build-configuration* macros are evaluated (``USE_ROCM``, HIP platform macros,
``ENABLE_FP8`` ...).  Any conditional whose value depends on something else
(``__CUDA_ARCH__``, ``CUDA_VERSION``, macros defined in the sources) is kept verbatim,
with the build-config parts of its nested conditionals still resolved.  Dead lines and
resolved directive lines become empty lines, so line numbers are preserved.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# A CUDA build as vLLM's CMake configures it with nvcc >= 12.
CUDA_DEFINES: dict[str, int] = {"ENABLE_FP8": 1}
CUDA_UNDEFINED: frozenset[str] = frozenset({
    "USE_ROCM", "__HIP_PLATFORM_AMD__", "__HIP_PLATFORM_HCC__", "__HIPCC__", "__HIP__",
    "__HIP_DEVICE_COMPILE__", "HIP_FP8_TYPE_FNUZ", "HIP_FP8_TYPE_OCP", "USE_HIP",
    "__HIP_PLATFORM_NVIDIA__", "HIP_VERSION", "ROCM_VERSION", "VLLM_ROCM",
})
_UNDEF_PATTERNS = (re.compile(r"__gfx\w*__"), re.compile(r"__HIP\w*"), re.compile(r"HIP_\w*"),
                   re.compile(r"ROCM_\w*"))


@dataclass(frozen=True)
class BuildConfig:
    """Which macros are known: ``defines`` (name -> value) and known-undefined names."""
    defines: dict[str, int] = field(default_factory=lambda: dict(CUDA_DEFINES))
    undefined: frozenset[str] = CUDA_UNDEFINED
    undefined_patterns: tuple[re.Pattern[str], ...] = _UNDEF_PATTERNS

    def lookup(self, name: str) -> int | None:
        """1/0-ish value of a macro when known, else None."""
        if name in self.defines:
            return self.defines[name]
        if name in self.undefined or any(p.fullmatch(name) for p in self.undefined_patterns):
            return 0
        return None

    def is_defined(self, name: str) -> bool | None:
        if name in self.defines:
            return True
        if name in self.undefined or any(p.fullmatch(name) for p in self.undefined_patterns):
            return False
        return None


CUDA = BuildConfig()
ROCM = BuildConfig(defines={"USE_ROCM": 1, "__HIP_PLATFORM_AMD__": 1, "__HIPCC__": 1, "ENABLE_FP8": 1},
                   undefined=frozenset(), undefined_patterns=())

# ---------------------------------------------------------------- expressions
_TOK = re.compile(r"\s*(?:(\d+[uUlL]*|0[xX][0-9a-fA-F]+[uUlL]*)|([A-Za-z_]\w*)|(&&|\|\||==|!=|<=|>=|<<|>>|[()!~*/%+\-<>&^|?:,]))")
_BIN = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
        "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    expr = strip_comments(expr).strip()
    while pos < len(expr):
        m = _TOK.match(expr, pos)
        if not m or m.end() == pos:
            if expr[pos:].strip() == "":
                break
            raise ValueError(expr)
        out.append(m.group(m.lastindex or 0).strip())
        pos = m.end()
    return out


def evaluate(expr: str, cfg: BuildConfig) -> int | None:
    """Three-valued evaluation of an ``#if`` expression: int, or None when unknown."""
    try:
        toks = _tokens(expr)
    except ValueError:
        return None
    return _Expr(toks, cfg).value()


class _Expr:
    """Recursive-descent evaluation of one tokenised ``#if`` expression (None: unknown)."""

    def __init__(self, toks: list[str], cfg: BuildConfig) -> None:
        self.toks, self.cfg, self.pos = toks, cfg, 0

    def value(self) -> int | None:
        try:
            v = self.ternary()
            if self.pos != len(self.toks):
                return None
            return v
        except (ValueError, IndexError, ZeroDivisionError):
            return None

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> str:
        self.pos += 1
        return self.toks[self.pos - 1]

    def primary(self) -> int | None:
        t = self.take()
        if t == "(":
            v = self.ternary()
            if self.take() != ")":
                raise ValueError
            return v
        if t in ("!", "~", "-"):
            v = self.primary()
            return None if v is None else {"!": lambda x: int(not x), "~": lambda x: ~x, "-": lambda x: -x}[t](v)
        if t == "+":
            return self.primary()
        if t == "defined":
            paren = self.peek() == "("
            if paren:
                self.take()
            name = self.take()
            if paren and self.take() != ")":
                raise ValueError
            d = self.cfg.is_defined(name)
            return None if d is None else int(d)
        if t[0].isdigit():
            return int(t.rstrip("uUlL"), 0)
        if re.fullmatch(r"[A-Za-z_]\w*", t):
            if self.peek() == "(":  # function-like macro: unknown
                depth = 0
                while self.pos < len(self.toks):
                    x = self.take()
                    depth += x == "("
                    depth -= x == ")"
                    if depth == 0:
                        break
                return None
            return self.cfg.lookup(t)
        raise ValueError(t)

    def binary(self, min_prec: int) -> int | None:
        lhs = self.primary()
        while True:
            op = self.peek()
            if op not in _BIN or _BIN[op] < min_prec:
                return lhs
            self.take()
            rhs = self.binary(_BIN[op] + 1)
            lhs = _apply(op, lhs, rhs)

    def ternary(self) -> int | None:
        c = self.binary(1)
        if self.peek() == "?":
            self.take()
            a = self.ternary()
            if self.take() != ":":
                raise ValueError
            b = self.ternary()
            if c is None:
                return a if a is not None and a == b else None
            return a if c else b
        return c


def _apply(op: str, a: int | None, b: int | None) -> int | None:
    if op == "&&":
        if a == 0 or b == 0:
            return 0
        return None if a is None or b is None else 1
    if op == "||":
        if (a is not None and a != 0) or (b is not None and b != 0):
            return 1
        return None if a is None or b is None else 0
    if a is None or b is None:
        return None
    return {
        "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b, "==": lambda: int(a == b),
        "!=": lambda: int(a != b), "<": lambda: int(a < b), ">": lambda: int(a > b),
        "<=": lambda: int(a <= b), ">=": lambda: int(a >= b), "<<": lambda: a << b, ">>": lambda: a >> b,
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: int(a / b),
        "%": lambda: a % b,
    }[op]()


# ---------------------------------------------------------------- comments
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def strip_comments(s: str) -> str:
    return _COMMENT.sub(" ", s)


_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$", re.S)


def logical_lines(lines: list[str]) -> Iterable[tuple[int, int]]:
    """(start, end) index pairs of physical lines joined by backslash continuation."""
    i = 0
    while i < len(lines):
        j = i
        while lines[j].rstrip("\n").endswith("\\") and j + 1 < len(lines):
            j += 1
        yield i, j + 1
        i = j + 1


_DEFINED = re.compile(r"\bdefined\s*(\(\s*([A-Za-z_]\w*)\s*\)|\s+([A-Za-z_]\w*))")


def _simplify(line: str, cfg: BuildConfig) -> str:
    """Kept #if/#elif: replace defined(X) of known build-config macros by 1/0."""
    m = re.match(r"(\s*#\s*(?:if|elif)\b)(.*)$", line, re.S)
    if not m:
        return line

    def rep(d: re.Match) -> str:
        v = cfg.is_defined(d.group(2) or d.group(3))
        return d.group(0) if v is None else str(int(v))
    return m.group(1) + _DEFINED.sub(rep, m.group(2))


@dataclass
class _Frame:
    parent_live: bool
    emitting: bool = False      # directives of this chain are kept
    live: bool = False          # current branch is live
    done: bool = False          # an earlier branch was definitely taken


def evaluate_conditionals(text: str, cfg: BuildConfig = CUDA) -> tuple[str, list[bool]]:
    """Resolve build-config conditionals; returns (text, live) with one flag per line.

    Line count and numbering are preserved: dropped lines become empty.
    """
    return _Conditionals(text, cfg).run()


class _Conditionals:
    """One pass over the logical lines of a file with a stack of open conditionals."""

    def __init__(self, text: str, cfg: BuildConfig) -> None:
        self.cfg = cfg
        self.lines = text.split("\n")
        self.out = list(self.lines)
        self.live_mask = [True] * len(self.lines)
        self.stack: list[_Frame] = []

    def cur_live(self) -> bool:
        return all(f.live for f in self.stack)

    def run(self) -> tuple[str, list[bool]]:
        lines, out, live_mask, stack = self.lines, self.out, self.live_mask, self.stack
        in_block_comment = False
        for start, end in logical_lines(lines):
            # track /* ... */ spanning lines so that '#' inside comments is ignored
            was_in_comment = in_block_comment
            joined = "\n".join(lines[start:end])
            scan = joined
            if was_in_comment:
                k = scan.find("*/")
                scan = "" if k < 0 else scan[k + 2:]
            scan_nc = re.sub(r"/\*.*?\*/", " ", re.sub(r"//[^\n]*", "", scan), flags=re.S)
            opens = scan_nc.rfind("/*")
            in_block_comment = (was_in_comment and "*/" not in joined) or opens >= 0
            m = None if was_in_comment else _DIRECTIVE.match(joined)
            kind = m.group(1) if m else None
            keep: bool | None
            if m is not None and kind in ("if", "ifdef", "ifndef"):
                keep = self._open(kind, m.group(2), start)
            elif m is not None and kind in ("elif", "else") and stack:
                keep = self._branch(kind, m.group(2), start, end)
                if keep is None:   # the branch's lines are already written
                    continue
            elif kind == "endif" and stack:
                f = stack.pop()
                keep = f.parent_live and f.emitting
            else:
                keep = self.cur_live()
            if not keep:
                for k in range(start, end):
                    out[k] = ""
                    live_mask[k] = False
        return "\n".join(out), live_mask

    def _open(self, kind: str, arg: str, start: int) -> bool:
        """``#if`` / ``#ifdef`` / ``#ifndef``: push a frame; True when the directive is kept."""
        cfg = self.cfg
        parent = self.cur_live()
        f = _Frame(parent_live=parent)
        if parent:
            arg = arg.replace("\\\n", " ")
            if kind == "if":
                v = evaluate(arg, cfg)
            else:
                name = strip_comments(arg).strip().split()[0] if strip_comments(arg).strip() else ""
                d = cfg.is_defined(name)
                v = None if d is None else int(d if kind == "ifdef" else not d)
            if v is None:
                f.emitting, f.live = True, True
                if kind == "if":
                    self.out[start] = _simplify(self.lines[start], cfg)
            else:
                f.live, f.done = bool(v), bool(v)
        self.stack.append(f)
        return parent and f.emitting

    def _branch(self, kind: str, arg: str, start: int, end: int) -> bool | None:
        """``#elif`` / ``#else``: False to blank the lines, None when they were written here."""
        f, cfg, lines, out = self.stack[-1], self.cfg, self.lines, self.out
        if not f.parent_live:
            return False
        if f.done:
            f.live = False
            return False
        v = 1 if kind == "else" else evaluate(arg.replace("\\\n", " "), cfg)
        if v is None:
            f.live = True
            if f.emitting:
                out[start] = _simplify(lines[start], cfg)
                return True
            f.emitting = True
            out[start] = _simplify(re.sub(r"#\s*elif", "#if", lines[start], count=1), cfg)
            for k in range(start + 1, end):
                out[k] = lines[k]
            for k in range(start, end):
                self.live_mask[k] = True
            return None
        if v:
            f.live, f.done = True, True
            if f.emitting:
                out[start] = "#else"
                for k in range(start + 1, end):
                    out[k] = ""
                return None
            return False
        f.live = False
        return False


_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def includes(text: str) -> list[tuple[int, str, bool]]:
    """(line, target, is_quoted) for each #include of already-evaluated text."""
    res = []
    for m in _INCLUDE.finditer(text):
        res.append((text.count("\n", 0, m.start()) + 1, m.group(2), m.group(1) == '"'))
    return res
