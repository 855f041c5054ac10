"""SciPy's own convolve2d/correlate2d tests, run against cyconv.

The test files are those of the installed SciPy (scipy/signal/tests), run
unmodified in a subprocess with tests/scipy_suite_plugin.py swapping in
cyconv's functions. Skipped when SciPy or its tests are not installed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

scipy = pytest.importorskip("scipy")
pytest.importorskip("scipy.signal")

SCIPY_TESTS = Path(scipy.__file__).parent / "signal" / "tests"
FILES = ["test_signaltools.py", "test_fir_filter_design.py"]
# The classes for the two functions, the firwin_2d tests (its impulse
# response runs a rank-1 kernel) and the multi-axis FFT tests that take
# convolve2d as their reference.
SELECTION = ("TestConvolve2d or TestCorrelate2d or Testfirwin_2d "
             "or test_random_data_multidim_axes")
HERE = Path(__file__).parent


@pytest.mark.skipif(not all((SCIPY_TESTS / f).exists() for f in FILES),
                    reason="SciPy's test files are not installed")
def test_scipy_signal_suite_passes_against_cyconv(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "-p", "scipy_suite_plugin", "--rootdir", str(tmp_path), "-c", os.devnull,
           "-k", SELECTION, *[str(SCIPY_TESTS / f) for f in FILES]]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    tail = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, f"SciPy's tests failed against cyconv:\n{tail}\n{result.stderr[-2000:]}"
    assert " passed" in tail and "failed" not in tail
