"""Build the compiled extensions; all metadata lives in pyproject.toml.

Set CYCONV_DEBUG=1 to rebuild with Cython bounds/wraparound checks and -O0 -g,
for a debugging or sanitizer run.
"""

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CYCONV_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

if sys.platform == "win32":
    compile_args = ["/O2"] if not DEBUG else ["/Od", "/Zi"]
else:
    # Portable flags only: instruction sets beyond the baseline are chosen at
    # run time by per-function target attributes (see _csrc/kernels.c).
    # -ffp-contract=fast: GCC's GNU-dialect default, stated so that a -std=c11
    # build still fuses the vector multiply-adds the kernels' rounding relies on.
    # -g0: CPython's own CFLAGS usually carry -g, which setuptools passes on;
    # these flags come after them, so a release build ships no debug
    # information (it was 1.9 of a 2.3 MB extension). CYCONV_DEBUG keeps -g.
    compile_args = ["-O3", "-ffp-contract=fast", "-g0"] if not DEBUG else ["-O0", "-g"]

# The extension uses typed memoryviews only, no NumPy C API: no NumPy headers.
common = dict(
    include_dirs=["src/cyconv/_csrc"],
    extra_compile_args=compile_args,
)

extensions = [
    Extension(
        "cyconv._core",
        ["src/cyconv/_core.pyx", "src/cyconv/_csrc/kernels.c"],
        # setuptools does not scan #includes: rebuild when the kernel template changes
        depends=["src/cyconv/_csrc/kernels.h", "src/cyconv/_csrc/kernels_impl.h",
                 "src/cyconv/_core.pxd"],
        **common,
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
