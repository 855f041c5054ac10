"""Run-time choice of the kernel level (instruction set) and its report."""

from __future__ import annotations

import os

from . import _core, _geometry, _memory

LEVELS = ("baseline", "avx2", "avx512")
_FEATURES = ("sse2", "avx", "avx2", "fma", "avx512f", "neon")


def _choose_level() -> int:
    """Best level the CPU supports, lowered by CYCONV_CPU if set."""
    best = _core.detect_level()
    forced = os.environ.get("CYCONV_CPU", "").strip().lower()
    if not forced:
        return best
    if forced not in LEVELS:
        raise ImportError(
            f"CYCONV_CPU={forced!r} is not a kernel level; use one of {', '.join(LEVELS)}"
        )
    # Forcing a level above what the CPU has would crash: cap it.
    return min(LEVELS.index(forced), best)


_core.set_level(_choose_level())


def cpu_features() -> list[str]:
    """Names of the CPU features cyconv detected."""
    mask = _core.detect_features()
    return [name for bit, name in enumerate(_FEATURES) if mask & (1 << bit)]


def compiler() -> str:
    """The C compiler that built cyconv's kernels (e.g. "gcc 12.2.0", "clang-cl 19.1.0")."""
    return _core.compiler()


def kernel_level() -> str:
    """Name of the instruction-set level the kernels use in this process."""
    return _core.level_name()


def set_cache_limit(nbytes: int) -> int:
    """Keep up to `nbytes` of freed large arrays for later results; returns the old limit.

    cyconv makes its results and scratch arrays of 4 MB and more through a
    NumPy memory handler that keeps a few of them (at most 4, and 256 MB in
    all by default) once they are freed, and hands them out again to later
    calls of about their size. Pages fresh from the operating system are
    zeroed by it as a call first writes them: a third of a 4096 x 4096
    float32 5 x 5 convolution. ``set_cache_limit(0)`` frees what is kept and
    keeps nothing more.
    """
    n = _geometry.int_at_least(nbytes, "nbytes", 0)
    return _memory.set_limit(min(n, 2**63 - 1))


def show_config() -> None:
    """Print the detected CPU features and the kernel level in use."""
    from ._version import __version__

    best = LEVELS[_core.detect_level()]
    print(f"cyconv {__version__}")
    print(f"  built with:            {_core.compiler()}")
    print(f"  CPU features detected: {', '.join(cpu_features()) or 'none'}")
    print(f"  best kernel level:     {best}")
    from ._parallel import available_cpus, get_num_threads

    print(f"  kernel level in use:   {kernel_level()}"
          + ("  (lowered by CYCONV_CPU)" if kernel_level() != best else ""))
    if kernel_level() == "avx512":
        print("  512-bit row kernels:   "
              + ("all (full-width 512-bit FMAs)" if _core.rows_512()
                 else "where faster than 256-bit (512-bit FMAs as two halves)"))
    print(f"  threads:               {get_num_threads()} (of {available_cpus()} available CPUs)")
    print(f"  freed arrays kept:     {_memory.kept_bytes() / 2**20:.0f} MB"
          f" (limit {_memory.limit() / 2**20:.0f} MB, set_cache_limit)")
