"""Every code block of README.md runs as printed.

Python blocks run as scripts, each alone in a fresh interpreter and an empty
folder (a block must not need an earlier one). Shell blocks run line by line
in one folder; the install commands (`pip install ...`) are what CI itself
runs, so they are not repeated here. The Cython block is compiled as a
downstream extension and compared with SciPy.

The one change made to a block: sizes that exist to show scale (the Dask
example's 1 GiB image) are made smaller through SMALLER below; each of those
substitutions must still apply, so the test fails if the README moves on.
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

README = Path(__file__).resolve().parent.parent / "README.md"
if not README.is_file():
    pytest.skip("README.md is not next to the tests (installed-wheel run)",
                allow_module_level=True)

# literal in a block -> what it becomes in the test run
SMALLER = {"SIZE = 16384": "SIZE = 4096"}


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"^```" + language + r"\n(.*?)^```$", text,
                                            flags=re.S | re.M)]


def _shrunk(code: str) -> str:
    for big, small in SMALLER.items():
        code = code.replace(big, small)
    return code


def _env() -> dict:
    env = os.environ.copy()
    env.setdefault("MPLBACKEND", "Agg")
    return env


def test_substitutions_still_apply():
    code = "\n".join(_blocks("python"))
    for big in SMALLER:
        assert big in code, f"README no longer contains {big!r}: update SMALLER"


PYTHON_BLOCKS = _blocks("python")


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block(index, tmp_path):
    pytest.importorskip("PIL")
    code = PYTHON_BLOCKS[index]
    if "dask" in code:
        pytest.importorskip("dask.array")
        pytest.importorskip("distributed")
    script = tmp_path / "block.py"
    script.write_text(_shrunk(code))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=_env())
    assert proc.returncode == 0, f"README python block {index}:\n{code}\n{proc.stderr}"


def _shell_lines() -> list[str]:
    lines = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line)
    return lines


def test_shell_blocks(tmp_path):
    """The command-line block, line by line, in one folder, as a user pastes it."""
    pytest.importorskip("PIL")
    lines = _shell_lines()
    assert lines, "README has no sh block"
    # `cyconv` is on PATH once the package is installed; a source-tree run
    # without installing calls the same entry point through the module.
    cyconv = ["cyconv"] if shutil.which("cyconv") else [sys.executable, "-m", "cyconv"]
    for line in lines:
        argv = shlex.split(line, comments=True)
        if argv[0] == "cyconv":
            argv = cyconv + argv[1:]
            proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=300, env=_env())
        else:
            proc = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60, env=_env())
        assert proc.returncode == 0, f"README line {line!r}:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "smooth" / "blur.png").is_file()
    assert (tmp_path / "soft.png").is_file()


SETUP = textwrap.dedent('''
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    import cyconv
    ext = Extension("readme_block", ["readme_block.pyx"], include_dirs=[cyconv.get_include()])
    setup(ext_modules=cythonize([ext]), script_args=["build_ext", "--inplace", "-q"])
    ''')


def test_cython_block(tmp_path):
    pytest.importorskip("Cython")
    (block,) = _blocks("cython")
    (tmp_path / "readme_block.pyx").write_text(block)
    (tmp_path / "setup.py").write_text(SETUP)
    proc = subprocess.run([sys.executable, "setup.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**_env(), "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = next(p for p in tmp_path.iterdir()
                 if p.name.startswith("readme_block.") and p.suffix in (".so", ".pyd"))
    spec = importlib.util.spec_from_file_location("readme_block", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    img = np.random.default_rng(0).random((37, 41))
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
    want = scipy.signal.correlate2d(img, sobel, "same", "symm")
    np.testing.assert_allclose(module.sobel_x(img), want, rtol=1e-12, atol=1e-12)


def test_demo_pictures_are_current(tmp_path):
    """docs/demo/ holds what `cyconv demo` writes (tools/make_demo_images.py)."""
    Image = pytest.importorskip("PIL.Image")
    from cyconv.__main__ import main

    committed = README.parent / "docs" / "demo"
    if not committed.is_dir():
        pytest.skip("docs/demo is not next to the tests (installed-wheel run)")
    assert main(["demo", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert sorted(p.name for p in committed.iterdir()) == written
    text = README.read_text(encoding="utf-8")
    for name in written:
        assert f"docs/demo/{name}" in text, f"README does not show {name}"
        with Image.open(committed / name) as a, Image.open(tmp_path / name) as b:
            assert a.mode == b.mode and a.size == b.size, name
            diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
            assert diff.max() <= 1, (name, diff.max())
