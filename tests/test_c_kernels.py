"""The C micro-kernels on their own: tests/c/test_kernels.c checks every
kernel of every instruction-set level this CPU has against its definition
in kernels.h. It is compiled here with the system C compiler, natively and
as a compiler without GNU C (MSVC) sees kernels.c; tools/check_wheel.py also
runs it under qemu (SSE2-only and AVX2 x86-64 CPUs, aarch64 NEON)."""

import os
import re
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from cyconv import _core

TESTS_C = Path(__file__).parent / "c"
CSRC = Path(__file__).parent.parent / "src" / "cyconv" / "_csrc"
# setup.py's flags plus those Python's own CFLAGS add (-fwrapv -DNDEBUG); no
# -std=, like setup.py: GCC's GNU dialect contracts a*b+c into FMA, ISO C
# modes (-std=c11) do not.
KERNEL_CFLAGS = ["-O3", "-fwrapv", "-DNDEBUG", "-Wall", "-Wextra"]
LEVEL_NAMES = ["baseline", "avx2", "avx512"]

if not (CSRC / "kernels.c").is_file():
    pytest.skip("the kernel sources (src/cyconv/_csrc) are not next to the tests: "
                "an installed wheel ships only the headers", allow_module_level=True)


def c_compiler():
    """The compiler Python was built with if present, else cc/gcc/clang."""
    configured = shlex.split(sysconfig.get_config_var("CC") or "")
    if configured and shutil.which(configured[0]):
        return configured
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    return None


def is_gcc_or_clang(cc):
    proc = subprocess.run([*cc, "--version"], capture_output=True, text=True)
    return proc.returncode == 0 and re.search(r"gcc|clang|Free Software", proc.stdout, re.I)


CC = c_compiler()
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH")


def compile_program(cc, out, *sources, extra=()):
    cmd = [*cc, *KERNEL_CFLAGS, *extra, f"-I{CSRC}", f"-I{TESTS_C}", str(TESTS_C / "test_kernels.c"),
           *map(str, sources), "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, " ".join(cmd) + "\n" + proc.stdout + proc.stderr
    return out


def run_program(path):
    proc = subprocess.run([str(path)], capture_output=True, text=True, timeout=600)
    levels = re.findall(r"^level (\d) (\S+) .*: (ok|FAIL)$", proc.stdout, re.M)
    best = re.search(r"^best level: (\S+)$", proc.stdout, re.M)
    return proc, levels, best.group(1) if best else None


@needs_cc
def test_every_kernel_level_of_this_cpu(tmp_path):
    program = compile_program(CC, tmp_path / "test_kernels", CSRC / "kernels.c")
    proc, levels, best = run_program(program)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every level from baseline up to the best this CPU and OS support, as cyconv detects
    expected = LEVEL_NAMES[:_core.detect_level() + 1]
    assert [(int(i), name) for i, name, _ in levels] == list(enumerate(expected)), proc.stdout
    assert all(result == "ok" for _, _, result in levels), proc.stdout
    assert best == expected[-1]
    # on AVX-512 CPUs the row kernels again, all 512 bits wide (Zen 5's choice)
    wide = re.findall(r"^all rows 512-bit, .*: (ok|FAIL)$", proc.stdout, re.M)
    assert wide == (["ok"] if best == "avx512" else []), proc.stdout


# What a compiler without GNU extensions (MSVC) gets: __GNUC__ undefined, so
# CYC_HAVE_VECTOR_EXT is 0. Strict C11 (-pedantic-errors) rejects statement
# expressions, typeof, binary literals and the like; VLAs are rejected too
# (MSVC has none); poisoned identifiers make GNU keywords left outside the
# #if an error.
SCALAR_WRAPPER = """\
#include <stddef.h>
#include <string.h>
#undef __attribute__
#undef __extension__
#pragma GCC poison __attribute__ __asm__ asm __typeof__ typeof __builtin_expect __int128
#pragma GCC poison __extension__ __get_cpuid __get_cpuid_max __cpuid_count __builtin_cpu_supports
#include "kernels.c"
"""
NO_GNU = ["-U__GNUC__", "-U__GNUC_MINOR__", "-U__GNUC_PATCHLEVEL__", "-std=c11",
          "-pedantic-errors", "-Werror=vla", "-Wall", "-Wextra"]


@pytest.fixture(scope="module")
def gnu_cc():
    if CC is None or not is_gcc_or_clang(CC):
        pytest.skip("the scalar-build check needs GCC or Clang (it undefines __GNUC__)")
    return CC


def test_scalar_build_compiles_as_strict_c11_and_passes(gnu_cc, tmp_path):
    wrapper = tmp_path / "scalar.c"
    wrapper.write_text(SCALAR_WRAPPER)
    obj = tmp_path / "scalar.o"
    cmd = [*gnu_cc, *NO_GNU, "-O3", f"-I{CSRC}", "-c", str(wrapper), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, " ".join(cmd) + "\n" + proc.stderr
    program = compile_program(gnu_cc, tmp_path / "test_scalar", obj)
    proc, levels, best = run_program(program)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert levels == [("0", "baseline", "ok")] and best == "baseline", proc.stdout


def test_scalar_build_has_no_gnu_constructs(gnu_cc, tmp_path):
    # The kernels' own code after preprocessing (system headers left out): no
    # GNU builtins, attributes or asm (GCC accepts __builtin_* even without
    # __GNUC__, MSVC does not). Pragmas MSVC does not know only warn (C4068).
    cmd = [*gnu_cc, *NO_GNU, f"-I{CSRC}", "-E", str(CSRC / "kernels.c")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    own, lines = False, []
    csrc = os.path.realpath(CSRC) + os.sep
    for line in proc.stdout.splitlines():
        marker = re.match(r'^# \d+ "([^"]+)"', line)
        if marker:
            own = os.path.realpath(marker.group(1)).startswith(csrc)
        elif own:
            lines.append(line)
    assert len(lines) > 100
    gnu = re.findall(r"__builtin_[a-z0-9_]+|__attribute__|__asm__|__typeof__|__extension__|__int128",
                     "\n".join(lines))
    assert not gnu, sorted(set(gnu))


# ---------------------------------------------------------------------------
# Windows, proven from Linux (issue: every wheel fast). Wheels for Windows are
# built with clang-cl (setup.py); two stand-ins show what that gives:
# - mingw-w64 builds kernels.c and the C test for the Windows ABI, and wine
#   runs it: the same levels as natively, each passing against its definition;
# - clang in MSVC mode (--target=x86_64-pc-windows-msvc: _MSC_VER and
#   __clang__ defined, __GNUC__ not, as for clang-cl) compiles kernels.c into
#   AVX2 and AVX-512 functions that contain vector FMAs.
# .ci/run installs the Debian packages these need (gcc-mingw-w64-x86-64,
# wine64, clang, llvm); elsewhere they skip, naming what is missing.

MINGW = shutil.which("x86_64-w64-mingw32-gcc")
WINE = shutil.which("wine64") or shutil.which("wine") or (
    "/usr/lib/wine/wine64" if os.path.exists("/usr/lib/wine/wine64") else None)


@pytest.mark.skipif(MINGW is None or WINE is None,
                    reason="needs x86_64-w64-mingw32-gcc and wine64 "
                           "(apt-get install gcc-mingw-w64-x86-64 wine64)")
def test_windows_build_under_wine(tmp_path):
    exe = compile_program([MINGW], tmp_path / "test_kernels.exe", CSRC / "kernels.c",
                          extra=["-ffp-contract=fast", "-static"])
    env = {**os.environ, "WINEDEBUG": "-all", "WINEPREFIX": str(tmp_path / "wine")}
    proc = subprocess.run([WINE, str(exe)], capture_output=True, text=True, timeout=600,
                          env=env)
    levels = re.findall(r"^level (\d) (\S+) .*: (ok|FAIL)\r?$", proc.stdout, re.M)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the Windows build detects what the native build detects, and every level passes
    expected = LEVEL_NAMES[:_core.detect_level() + 1]
    assert [(int(i), name) for i, name, _ in levels] == list(enumerate(expected)), proc.stdout
    assert all(result == "ok" for _, _, result in levels), proc.stdout


# The Windows SDK's headers are not here: stand-ins declaring the little that
# kernels.c (memcpy) and clang's <immintrin.h> (the allocators) use.
MSVC_HEADERS = {
    "string.h": "void *__cdecl memcpy(void *dst, const void *src, size_t n);\n"
                "void *__cdecl memset(void *dst, int c, size_t n);\n",
    "stdlib.h": "void *__cdecl malloc(size_t n);\nvoid __cdecl free(void *p);\n",
    "malloc.h": "void *__cdecl _aligned_malloc(size_t n, size_t align);\n"
                "void __cdecl _aligned_free(void *p);\n",
}


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("llvm-objdump") is None,
                    reason="needs clang and llvm-objdump (apt-get install clang llvm)")
def test_clang_cl_view_has_vector_kernels(tmp_path):
    (tmp_path / "include").mkdir()
    for name, text in MSVC_HEADERS.items():
        (tmp_path / "include" / name).write_text("#include <stddef.h>\n" + text)
    target = ["--target=x86_64-pc-windows-msvc", f"-isystem{tmp_path / 'include'}", f"-I{CSRC}"]
    macros = subprocess.run(["clang", *target, "-dM", "-E", str(CSRC / "kernels.c")],
                            capture_output=True, text=True, timeout=300)
    assert macros.returncode == 0, macros.stderr
    assert "#define _MSC_VER" in macros.stdout and "#define __GNUC__" not in macros.stdout
    obj = tmp_path / "kernels.obj"
    proc = subprocess.run(["clang", *target, "-O2", "-ffp-contract=fast", "-c",
                           str(CSRC / "kernels.c"), "-o", str(obj)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    dis = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", str(obj)],
                         capture_output=True, text=True, timeout=300).stdout
    functions = dict(re.findall(r"^[0-9a-f]+ <(\w+)>:\n(.*?)(?=\n\n|\Z)", dis, re.M | re.S))
    for level, register in (("avx2", "ymm"), ("avx512", "zmm")):
        for kernel in ("spatial_rows_f32", "spatial_rows_f64", "blocked_tile_f32", "blocked_tile_f64"):
            body = functions.get(f"cyc_{kernel}_{level}", "")
            fmas = re.findall(r"vfmadd\w+\s.*%" + register, body)
            assert len(fmas) >= 4, (kernel, level, len(fmas))
    # and the detection code is there for clang-cl: cpuid, xgetbv
    assert re.search(r"\bcpuid\b", functions["cyc_detect_features"] if
                     "cyc_detect_features" in functions else dis)
