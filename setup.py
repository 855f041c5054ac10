"""Build the compiled extensions; all metadata lives in pyproject.toml.

Set CYCONV_DEBUG=1 to rebuild with Cython bounds/wraparound checks and -O0 -g,
for a debugging or sanitizer run.
"""

import os
import sys

import numpy as np
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
    # run time by per-function target attributes (see _csrc/dispatch.h).
    # -ffp-contract=fast: GCC's GNU-dialect default, stated so that a -std=c11
    # build still fuses the vector multiply-adds the kernels' rounding relies on.
    compile_args = ["-O3", "-ffp-contract=fast"] if not DEBUG else ["-O0", "-g"]

common = dict(
    include_dirs=[np.get_include(), "src/cyconv/_csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    extra_compile_args=compile_args,
)

extensions = [
    Extension(
        "cyconv._core",
        ["src/cyconv/_core.pyx", "src/cyconv/_csrc/kernels.c"],
        # setuptools does not scan #includes: rebuild when the kernel template changes
        depends=["src/cyconv/_csrc/kernels.h", "src/cyconv/_csrc/kernels_impl.h",
                 "src/cyconv/_csrc/pixels_impl.h", "src/cyconv/_core.pxd"],
        **common,
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
