"""Run-time CPU dispatch, show_config and the command line."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

import cyconv
from cyconv import _core
from cyconv._config import LEVELS

AVAILABLE = LEVELS[: _core.detect_level() + 1]


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


@pytest.mark.parametrize("level", AVAILABLE)
def test_every_level_matches_scipy(level):
    """Each instruction-set level, forced in a fresh process, gives SciPy's results."""
    code = f"""
import numpy as np, scipy.signal, cyconv
assert cyconv.kernel_level() == {level!r}, cyconv.kernel_level()
rng = np.random.default_rng(5)
for dt in (np.float32, np.float64):
    for shape, kshape in (((67, 131), (5, 7)), ((9, 5), (4, 4)), ((40, 70), (1, 11))):
        a = rng.standard_normal(shape).astype(dt); k = rng.standard_normal(kshape).astype(dt)
        for mode in ("full", "same", "valid"):
            got = cyconv.convolve2d(a, k, mode, "symm")
            ref = scipy.signal.convolve2d(a, k, mode, "symm")
            assert got.dtype == ref.dtype and np.allclose(got, ref, rtol=1e-4, atol=1e-4)
    x = rng.standard_normal((2, 6, 19, 23)).astype(dt)
    for k_out, groups in ((40, 1), (6, 6), (12, 3)):
        w = rng.standard_normal((k_out, 6 // groups, 3, 3)).astype(dt)
        got = cyconv.conv2d(x, w, padding=1, groups=groups)
        ref = np.zeros_like(got)
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        kg, cg = k_out // groups, 6 // groups
        for n in range(2):
            for o in range(k_out):
                g = o // kg
                ref[n, o] = sum(scipy.signal.correlate2d(xp[n, g * cg + c], w[o, c], "valid")
                                for c in range(cg))
        assert np.allclose(got, ref, rtol=1e-4, atol=1e-4)
print("ok")
"""
    proc = _run(code, CYCONV_CPU=level)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_level_is_capped_and_validated():
    proc = _run("import cyconv; print(cyconv.kernel_level())", CYCONV_CPU="avx512")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == AVAILABLE[-1]
    proc = _run("import cyconv", CYCONV_CPU="sse9")
    assert proc.returncode != 0
    assert "CYCONV_CPU" in proc.stderr and "baseline" in proc.stderr


def test_show_config(capsys):
    cyconv.show_config()
    out = capsys.readouterr().out
    assert cyconv.__version__ in out
    assert f"kernel level in use:   {cyconv.kernel_level()}" in out
    assert f"threads:               {cyconv.get_num_threads()}" in out
    assert cyconv.kernel_level() in LEVELS
    if sys.platform.startswith("linux") and os.uname().machine == "x86_64":
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        assert ("avx2" in cyconv.cpu_features()) == (" avx2" in flags)
        assert ("avx512f" in cyconv.cpu_features()) == (" avx512f" in flags)


def test_show_config_names_the_compiler(capsys):
    import sysconfig

    from cyconv._core import compiler

    cyconv.show_config()
    name = compiler()
    assert f"built with:            {name}" in capsys.readouterr().out
    # the compiler that built this interpreter's extensions, by family
    cc = (sysconfig.get_config_var("CC") or "").split()
    family = {"gcc": "gcc", "cc": "gcc", "clang": "clang", "cl.exe": "clang-cl"}
    if cc and os.path.basename(cc[0]) in ("gcc", "clang") and not os.environ.get("CC"):
        assert name.split()[0] == family[os.path.basename(cc[0])], (name, cc)


def test_cli_info():
    proc = subprocess.run([sys.executable, "-m", "cyconv", "info"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "kernel level in use" in proc.stdout


def test_cli_demo(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "cyconv", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = ["blur.png", "sobel_edges.png", "sharpen.png", "feature_maps.png", "gaussian31.png"]
    for name in names:
        assert str(out / name) in proc.stdout
    def load(path):
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=float)

    sample = load(cyconv.__path__[0] + "/data/sample.png")
    blur = load(out / "blur.png")
    ref = np.stack([scipy.signal.convolve2d(sample[..., c], np.ones((5, 5)) / 25, "same", "symm")
                    for c in range(3)], axis=-1)
    assert np.abs(blur - ref).max() <= 0.5 + 1e-9  # rounded to uint8, nothing else
    assert abs(blur.mean() - sample.mean()) < 0.5  # the box kernel keeps brightness
    grid = load(out / "feature_maps.png")
    H, W = sample.shape[:2]
    gap = 4  # 4 rows x 3 columns of maps, gaps between them, label margins left and on top
    top, left = grid.shape[0] - (4 * H + 3 * gap), grid.shape[1] - (3 * W + 2 * gap)
    assert 0 < top < 40 and 0 < left < 120, grid.shape
    # the big blur mirrors the borders: no dark frame (zero fill would dim the edge rows)
    g31 = load(out / "gaussian31.png")[..., 0]
    gray = sample.mean(axis=-1)
    assert abs(g31[:3].mean() - gray[:3].mean()) < 10 and abs(g31[:, :3].mean() - gray[:, :3].mean()) < 10
    assert "auto picks" in proc.stdout
