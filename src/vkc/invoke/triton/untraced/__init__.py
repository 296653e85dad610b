"""The untraced path: a launch synthesised from the kernel's signature and launch site.

Entry: :func:`untraced_plan` (:mod:`.fallback`), used for Triton kernels without a workload
recipe; the artifact's header says UNTRACED / generic.  Modules: :mod:`.generic` (the launch),
:mod:`.guesses` (name-based values), :mod:`.variants` (pointer dtypes settled by Triton's front
end), :mod:`.sigtypes` / :mod:`.ptrroles` / :mod:`.cxusage` (static parameter typing),
:mod:`.constexprs` (compile-time rules), :mod:`.indexinit` (ranged contents of index buffers),
:mod:`.launchsite` (the launch statement),
:mod:`.decorators` (autotune / heuristics).
"""
from vkc.invoke.triton.untraced.fallback import untraced_plan

__all__ = ["untraced_plan"]
