"""The vkc error tree: one base class, each error carries a message and a hint.

The CLI prints ``vkc: error: <message> (hint: <hint>)`` on one line of stderr and
exits with the class's ``exit_code``.  Nothing in this module imports the rest of vkc.

    VkcError                      1  base; never raised directly
    ├── UsageError                2  bad command line / bad argument value
    ├── SourceError               3  vLLM source missing, offline, hash mismatch, bad tree
    ├── KernelLookupError         4  kernel name unknown
    │   ├── AmbiguousKernelError  5  bare name matches several kernels
    │   └── KernelNameError       6  name unsafe as a file name (path-like, NUL ...)
    ├── ModelError                7  model config missing, unreachable or malformed
    ├── ExtractionError           8  kernel cannot be made self-contained
    ├── InvocationError           9  invocation example cannot be built
    │   └── NotApplicableError   12  the kernel does not apply to this model (e.g. MoE on a dense model)
    ├── WriteError               10  output cannot be written atomically
    └── VerifyError              11  an artifact failed verification
"""
from __future__ import annotations


class VkcError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UsageError(VkcError):
    exit_code = 2


class SourceError(VkcError):
    exit_code = 3


class KernelLookupError(VkcError):
    exit_code = 4


class AmbiguousKernelError(KernelLookupError):
    exit_code = 5


class KernelNameError(KernelLookupError):
    exit_code = 6


class ModelError(VkcError):
    exit_code = 7


class ExtractionError(VkcError):
    exit_code = 8


class InvocationError(VkcError):
    exit_code = 9


class NotApplicableError(InvocationError):
    exit_code = 12


class WriteError(VkcError):
    exit_code = 10


class VerifyError(VkcError):
    exit_code = 11
