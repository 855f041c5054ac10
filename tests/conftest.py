"""Settings for the whole suite."""

from cyconv import _scratch

# Every scratch array the package hands out starts as NaN (all bits set):
# a kernel that reads scratch it did not write gives NaN and fails its test.
_scratch.poison = True
