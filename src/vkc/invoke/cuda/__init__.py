"""CUDA invoker: a generated C++ host program running one extracted kernel.  Entry: :func:`invoke_cuda`."""
from vkc.invoke.cuda.invoke import (MARKER, build_command, instantiation_marker, invoke_cuda,
                                    main_file_name)

__all__ = ["MARKER", "build_command", "instantiation_marker", "invoke_cuda", "main_file_name"]
