"""Settings and shared fixtures for the whole suite."""

import pytest

from cyconv import _core, _scratch

# Every scratch array the package hands out starts as NaN (all bits set):
# a kernel that reads scratch it did not write gives NaN and fails its test.
_scratch.poison = True


@pytest.fixture
def rows_512_restored():
    """Restores the AVX-512 level's wide-or-mixed choice (_core.set_rows_512)
    that the test changes."""
    old = _core.rows_512()
    yield
    _core.set_rows_512(old)


@pytest.fixture
def mixed_widths(rows_512_restored):
    """The AVX-512 level's mixed 256/512-bit choice (what machines with
    double-pumped 512-bit FMAs run): layers of fewer output channels than an
    AVX-512 block keep AVX2's blocked tiles (_core._wide_small_tiles). A
    no-op below AVX-512 or where the CPU's choice is already mixed."""
    _core.set_rows_512(False)
