"""Helpers of the generic CUDA invocation: which instantiation, and collision-free names.

* :func:`pick_instantiation` chooses the template arguments from the extractor's facts
  (the model's dtype first, then the launch's dtype-free one, then any other dtype,
  then the extractor's example instantiation) and says where they came from.
* :class:`Names` hands out identifiers for ``main()``'s scope that collide neither
  with the host template's own locals nor with each other.
* :func:`namespace_directives` are the ``using namespace`` lines that make the
  kernel's enclosing namespaces visible to the host code (parameter types such as
  ``Fp8KVCacheDataType`` are spelled unqualified in the kernel's signature).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vkc.cxx.text import split_top

# locals host.cu.j2 declares at main()'s outermost scope (a redeclaration is an error)
TEMPLATE_LOCALS = frozenset({
    "small_sanity", "dump_dir", "stream", "free_bytes", "total_bytes", "budget_bytes",
    "vkc_bytes_per_unit", "vkc_fixed_bytes", "vkc_units", "vkc_grid", "vkc_block", "vkc_smem",
    "iters_env", "iters", "warmup", "ev_start", "ev_stop", "total_ms", "time_ms", "bytes_moved",
    "gbps", "vkc_device_count", "main",
})
# keys tried after the model's dtype, in order (index kernels are keyed by index dtype)
_PREFERRED = ("default", "bfloat16", "float16", "float32", "int32", "int64")
_IDENT = re.compile(r"[A-Za-z_]\w*")


def pick_instantiation(facts: Mapping[str, Any], dtype: str) -> tuple[str, str]:
    """(template argument text, where it came from) for the generic plan; ("", "") if none."""
    unbound = {" ".join(str(u).split()) for u in facts.get("unbound_template_args") or ()}
    # an instantiation with an argument the unit cannot name (a wrapper's runtime value)
    # gives way to the example instantiation
    insts = {k: v for k, v in (facts.get("instantiations") or {}).items()
             if v and not unbound & {" ".join(a.split()) for a in split_top(v, angles=True)}}
    guessed = sorted(n for n, ch in (facts.get("template_arg_choices") or {}).items()
                     if isinstance(ch, dict) and ch.get("default"))
    keys = [k for k in (dtype, *_PREFERRED) if k in insts] + sorted(insts)
    if keys:
        key = keys[0]
        if guessed:
            note = (f"the extractor's example instantiation ({', '.join(guessed)} guessed: no launch binds "
                    "them statically; not vLLM's choice)")
        else:
            note = "from vLLM's launch"
        if key not in (dtype, "default"):
            note += f" (its {key} instantiation: none for {dtype})"
        return insts[key], note
    if facts.get("example_instantiation"):
        return (facts["example_instantiation"],
                "the extractor's example instantiation (no launch binds them statically; not vLLM's choice)")
    launch = facts.get("launch") or {}
    if launch.get("template_args"):
        return launch["template_args"], "from vLLM's launch (as written there)"
    return "", ""


# names the host code can spell without the kernel's namespaces
_GLOBAL_NAMES = frozenset({
    "const", "volatile", "unsigned", "signed", "int", "long", "short", "char", "bool", "float", "double",
    "void", "size_t", "half", "half2", "__half", "__half2", "__nv_bfloat16", "__nv_bfloat162", "nv_bfloat16",
    "nv_bfloat162", "__nv_fp8_e4m3", "__nv_fp8_e5m2", "int2", "int4", "uint2", "uint4", "float2", "float4",
    "dim3", "typename", "class", "struct", "__restrict__", "__restrict", "restrict", "uint", "true", "false",
    *(f"{p}int{b}_t" for p in ("", "u") for b in (8, 16, 32, 64)),
})


def needs_namespaces(type_texts: list[str], tparam_names: set[str]) -> bool:
    """True when a parameter / template parameter type names something unqualified that
    is neither builtin nor a template parameter (then it lives in the kernel's namespace)."""
    for t in type_texts:
        t = re.sub(r"[A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)+", " ", t)   # qualified names are fine
        if set(_IDENT.findall(t)) - _GLOBAL_NAMES - tparam_names:
            return True
    return False


def namespace_directives(qualname: str) -> list[str]:
    """``using namespace a; using namespace a::b;`` for a kernel ``a::b::k`` (no anonymous ones)."""
    parts = [p for p in (qualname or "").split("::")[:-1]]
    out = []
    for i in range(len(parts)):
        if not _IDENT.fullmatch(parts[i]):
            break
        out.append(f"using namespace {'::'.join(parts[: i + 1])};")
    return out


class Names:
    """Identifiers declared at ``main()``'s scope; ``take`` refuses a second declaration."""

    def __init__(self, reserved: frozenset[str] = TEMPLATE_LOCALS) -> None:
        self.used: set[str] = set(reserved)

    def free(self, name: str) -> bool:
        return name not in self.used

    def take(self, name: str) -> bool:
        """Declare ``name``; False when it is already declared (the caller skips it)."""
        if name in self.used:
            return False
        self.used.add(name)
        return True

    def fresh(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3``... whichever is still free; declared on return."""
        name, i = base, 2
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name
