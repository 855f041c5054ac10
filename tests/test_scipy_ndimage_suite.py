"""SciPy's own tests of its filters (scipy/ndimage/tests/test_filters.py, from
the installed SciPy, unmodified) run on cyconv.ndimage.

The file runs in a subprocess with tests/scipy_ndimage_plugin.py, which makes
the test module's ``ndimage`` use cyconv's functions where cyconv provides
them and keeps the tests that call one of them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

scipy = pytest.importorskip("scipy")
# Looked up, not imported: importing SciPy's test module here would apply its
# marks under this project's --strict-markers (it runs in its own pytest below).
if importlib.util.find_spec("scipy.ndimage.tests.test_filters") is None:
    pytest.skip("SciPy's ndimage tests are not installed", allow_module_level=True)
# cyconv.ndimage mirrors SciPy 1.17 (its signatures and behaviour), and the
# plugin uses 1.17's test helpers: older suites test another API. (Python 3.10
# has SciPy up to 1.15.)
from numpy.lib import NumpyVersion  # noqa: E402

if NumpyVersion(scipy.__version__) < "1.17.0":
    pytest.skip(f"SciPy's own suite runs from SciPy 1.17 (installed: {scipy.__version__})",
                allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
def test_scipy_ndimage_filters_suite(tmp_path):
    import cyconv

    src = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE, src, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "scipy.ndimage.tests.test_filters",
         "-p", "scipy_ndimage_plugin", "-p", "no:cacheprovider", "-q", "-rfE",
         "--rootdir", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    tail = "\n".join(proc.stdout.splitlines()[-40:]) + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    # ~1800 of SciPy's tests call cyconv's functions; far fewer means the
    # plugin no longer reaches them.
    assert passed and int(passed.group(1)) > 1500, tail
    assert "failed" not in proc.stdout.splitlines()[-1], tail
