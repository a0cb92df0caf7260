"""Memory bounds for tests that feed hostile input to code that may try to allocate it."""

import contextlib
import resource


@contextlib.contextmanager
def address_space_cap(extra: int):
    """Cap this process at its current size plus ``extra`` bytes, so that a scanner that keeps
    the whole bomb in memory fails fast with MemoryError instead of taking the machine down."""
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (current + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
