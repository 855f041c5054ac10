"""Build the compiled extensions; all metadata lives in pyproject.toml.

Set CYCONV_DEBUG=1 to rebuild with Cython bounds/wraparound checks and -O0 -g,
for a debugging or sanitizer run.
"""

import os
import shutil
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
    # information (it was 1.9 of a 2.3 MB extension). CYCONV_DEBUG keeps -g,
    # at -O2: below it GCC fuses no vector multiply-adds while the kernels'
    # scalar tails call fma(), so a pixel's bits would depend on whether a
    # vector lane or a tail computed it (tests/c at -O1: 3x3 float64 rows
    # differ), and results on `workers`.
    compile_args = ["-O3", "-ffp-contract=fast", "-g0"] if not DEBUG \
        else ["-O2", "-ffp-contract=fast", "-g"]

# _core uses typed memoryviews only, no NumPy C API: no NumPy headers. _memory
# installs a NumPy memory handler (NumPy's C API, its headers at build time).
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
                 "src/cyconv/_csrc/ndimage_exact.h", "src/cyconv/_csrc/pixels_impl.h",
                 "src/cyconv/_csrc/tile_store.h", "src/cyconv/_csrc/pack.h",
                 "src/cyconv/_csrc/copy_row.h", "src/cyconv/_csrc/interleave.h",
                 "src/cyconv/_core.pxd"],
        **common,
    ),
    Extension(
        "cyconv._memory",
        ["src/cyconv/_memory.pyx"],
        depends=["src/cyconv/_csrc/block_cache.h"],
        include_dirs=["src/cyconv/_csrc", numpy.get_include()],
        extra_compile_args=compile_args,
    ),
]


def _clang_cl():
    """clang-cl.exe for Windows builds, or None.

    The kernels are one template written with GCC/Clang vector extensions and
    per-function target attributes; MSVC's cl.exe supports neither and would
    compile the scalar fallback (several times slower). clang-cl is a drop-in
    for cl.exe (same flags, same ABI, links with the same MSVC runtime), is
    installed on the Windows CI runners, and compiles the template as Clang
    does on Linux and macOS. CYCONV_WINDOWS_CC=msvc keeps cl.exe.
    """
    if os.environ.get("CYCONV_WINDOWS_CC", "").strip().lower() == "msvc":
        return None
    found = shutil.which("clang-cl")
    if found:
        return found
    for root in (os.environ.get("LLVM_HOME"), os.environ.get("ProgramFiles"),
                 r"C:\Program Files"):
        if root:
            for candidate in (os.path.join(root, "bin", "clang-cl.exe"),
                              os.path.join(root, "LLVM", "bin", "clang-cl.exe")):
                if os.path.isfile(candidate):
                    return candidate
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        clang = _clang_cl() if self.compiler.compiler_type == "msvc" else None
        if clang is not None:
            if not self.compiler.initialized:
                self.compiler.initialize()
            self.compiler.cc = clang
            for ext in self.extensions:
                # as -ffp-contract=fast for GCC: fuse the kernels' multiply-adds
                ext.extra_compile_args = ext.extra_compile_args + ["/clang:-ffp-contract=fast"]
            print(f"cyconv: compiling with {clang} (vector kernels and run-time dispatch)")
        super().build_extensions()


setup(ext_modules=cythonize(extensions, compiler_directives=directives),
      cmdclass={"build_ext": BuildExt})
