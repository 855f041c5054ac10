#!/usr/bin/env bash
# Rebuild cyconv with Cython bounds checking and AddressSanitizer +
# UndefinedBehaviorSanitizer, run the test suite against that build, then a
# short valgrind memcheck run. Usage:
#
#   tools/sanitize.sh [pytest args...]     # default: the whole suite
#
# The Python interpreter is not instrumented, so the ASan runtime must be
# loaded first: LD_PRELOAD=$(gcc -print-file-name=libasan.so). Leak
# detection is off (CPython keeps objects alive until exit on purpose);
# every other ASan/UBSan report aborts the run. tools/exact_scratch.py makes
# every scratch array its own allocation of its exact size, so that an
# overrun meets a redzone rather than a kept buffer's slack.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== copying the tracked tree to $work/src-tree"
mkdir -p "$work/src-tree"
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$work/src-tree")

echo "== venv with the build and test requirements (pyproject.toml's, as the README's install)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip
"$work/venv/bin/python" - "$work/src-tree/pyproject.toml" > "$work/requirements.txt" <<'PY'
import sys, tomllib   # (Python 3.11+)
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
print("\n".join(project["build-system"]["requires"]
                + project["project"]["dependencies"]
                + project["project"]["optional-dependencies"]["test"]))
PY
"$work/venv/bin/pip" install --quiet -r "$work/requirements.txt"

echo "== building with CYCONV_DEBUG=1 and -fsanitize=address,undefined"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
(cd "$work/src-tree" && CYCONV_DEBUG=1 CFLAGS="$san" LDFLAGS="$san" \
    "$work/venv/bin/python" setup.py build_ext --inplace -q)

asan_lib="$(gcc -print-file-name=libasan.so)"
ubsan_lib="$(gcc -print-file-name=libubsan.so)"
echo "== pytest under ASan/UBSan (LD_PRELOAD=$asan_lib $ubsan_lib)"
# Reports go to files (pytest captures stderr, and a sanitizer ends the process).
# CFLAGS/LDFLAGS: extensions the tests compile (tests/test_capi.py's cimporting
# user of the C API, examples/embed) are instrumented too.
# The timing tests (GIL, Ctrl-C latency) measure speed, which -O0 plus
# sanitizers does not have: they are deselected here and run in normal CI.
# So are the Windows cross-builds of tests/c (run under wine, not in this
# process): the cross compiler under the preloaded runtime takes minutes each.
if ! (cd "$work/src-tree" && \
    LD_PRELOAD="$asan_lib $ubsan_lib" CFLAGS="$san" LDFLAGS="$san" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=$work/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/ubsan" \
    PYTHONPATH="$work/src-tree/src:$work/src-tree/tools" PYTHONMALLOC=malloc \
    CYCONV_HYPOTHESIS_EXAMPLES=50 \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider -p exact_scratch -x \
        -k "not gil_released and not ctrl_c and not windows_build and not clang_cl_view" \
        "$@"); then
    cat "$work"/asan* "$work"/ubsan* 2>/dev/null | head -60
    echo "sanitize: FAILED"
    exit 1
fi

if command -v valgrind >/dev/null; then
    echo "== valgrind memcheck: every public function once (same debug build, no ASan)"
    (cd "$work/src-tree" && rm -rf build src/cyconv/_core*.so && CYCONV_DEBUG=1 \
        "$work/venv/bin/python" setup.py build_ext --inplace -q)
    cat > "$work/exercise.py" <<'PY'
import numpy as np, cyconv
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64, np.int16, np.complex128, np.longdouble):
    a = (rng.standard_normal((37, 29)) * 5).astype(dt)
    k = (rng.standard_normal((5, 4)) * 2).astype(dt)
    for mode in ("full", "same", "valid"):
        for b in ("fill", "wrap", "symm"):
            cyconv.convolve2d(a, k, mode, b, workers=2)
            cyconv.correlate2d(a[::-1, ::2], k, mode, b, method="fft")
g = np.outer(np.hanning(7), np.hanning(7))
cyconv.convolve2d(rng.standard_normal((64, 70)), g, "same", method="separable")
x = rng.standard_normal((2, 6, 19, 23)).astype(np.float32)
for w, groups in ((rng.standard_normal((40, 6, 3, 3)), 1), (rng.standard_normal((6, 1, 3, 3)), 6)):
    for mode in ("zeros", "reflect", "replicate", "circular", "symmetric"):
        cyconv.conv2d(x, w.astype(np.float32), stride=(1, 2), padding=1, groups=groups,
                      padding_mode=mode, workers=2)
cyconv.conv2d(x, rng.standard_normal((64, 6, 3, 3)).astype(np.float32), padding=1, dilation=2)
print("exercised")
PY
    log="$work/valgrind.log"
    (cd "$work/src-tree" && PYTHONPATH="$work/src-tree/src" PYTHONMALLOC=malloc \
        valgrind --tool=memcheck --error-exitcode=0 --log-file="$log" \
        "$work/venv/bin/python" "$work/exercise.py")
    # Errors attributed to cyconv's own code are the ones that count.
    ours=$(grep -E "Invalid (read|write)" -A12 "$log" | grep -c -E "_core\.|kernels\.c" || true)
    echo "valgrind: $(grep -E 'ERROR SUMMARY' "$log" | tail -1)"
    echo "valgrind: invalid reads/writes in cyconv frames: $ours"
    [ "$ours" -eq 0 ] || { grep -E "Invalid (read|write)" -A12 "$log" | head -80; exit 1; }
fi
echo "sanitize: OK"
