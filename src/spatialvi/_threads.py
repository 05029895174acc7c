"""Keep torch's intra-op thread count across calls into libraries that change it.

numba's parallel kernels (SMACOF's, UMAP's) and squidpy's parallel backend share the OpenMP
runtime with torch and leave its thread count at theirs (measured: 1 → 2). On a 2-core machine
running two processes that made later trainings up to ~10× slower, so calls into them put
torch's count back afterwards.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Restore ``torch.get_num_threads()`` on exit (if torch is imported at entry)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def keeps_torch_threads(func: Callable) -> Callable:
    """Decorator form of :func:`torch_threads_kept`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with torch_threads_kept():
            return func(*args, **kwargs)

    return wrapper
