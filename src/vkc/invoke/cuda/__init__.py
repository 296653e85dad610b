"""CUDA invoker: a generated C++ host program running one extracted kernel.  Entry: :func:`invoke_cuda`.

Layout: :mod:`.plan` (the typed launch plan), :mod:`.recipe_path` + :mod:`.recipes` (plans from
vLLM's wrapper code), :mod:`.untraced` (plans from the signature alone), :mod:`.header` and
:mod:`.render` (the program), :mod:`.invoke` (the entry that picks the path).
"""
from vkc.invoke.cuda.invoke import (
    MARKER,
    build_command,
    instantiation_marker,
    invoke_cuda,
    main_file_name,
)

__all__ = ["MARKER", "build_command", "instantiation_marker", "invoke_cuda", "main_file_name"]
