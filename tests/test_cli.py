"""The `cyconv` command line (filter, kernels), run in a subprocess on temporary files."""

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.signal

from cyconv import kernels as K

Image = pytest.importorskip("PIL.Image")

PIL_HINT = "pip install 'cyconv[image]' (from a source checkout: pip install '.[image]')"


def cyconv(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cyconv", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=os.environ.copy())


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rgb(path, seed=0, size=(19, 23)):
    a = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return a


def _load(path):
    with Image.open(path) as im:
        return im.mode, np.asarray(im).copy()


def _expected(a, k, correlate=False, mode="same", boundary="symm"):
    fn = scipy.signal.correlate2d if correlate else scipy.signal.convolve2d
    out = np.stack([fn(a[..., c].astype(float), k, mode, boundary) for c in range(a.shape[-1])],
                   axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _close(got, want):
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # .5 ties may round apart


def test_version():
    from cyconv import __version__

    proc = cyconv("--version")
    assert proc.returncode == 0 and proc.stdout == f"cyconv {__version__}\n"


def test_output_folders_are_created_alike(tmp_path, capsys):
    """-o and --out-dir both create missing folders, and say so."""
    a = _rgb(tmp_path / "in.png")
    for args, made, out in [(["-o", tmp_path / "a" / "b" / "o.png"], [tmp_path / "a",
                             tmp_path / "a" / "b"], tmp_path / "a" / "b" / "o.png"),
                            (["--out-dir", tmp_path / "c"], [tmp_path / "c"],
                             tmp_path / "c" / "in.png")]:
        assert _main(["filter", tmp_path / "in.png", "-k", "box:3", *args]) == 0
        assert capsys.readouterr() == ("".join(f"created folder {d}\n" for d in made)
                                       + f"wrote {out}\n", "")
        _close(_load(out)[1], _expected(a, K.box(3)))


def test_normalize_and_clipping_note(tmp_path, capsys):
    a = _rgb(tmp_path / "in.png", seed=4)
    ones = tmp_path / "ones.txt"
    ones.write_text("1 1 1\n1 1 1\n1 1 1\n")
    assert _main(["filter", tmp_path / "in.png", "-k", ones, "-o", tmp_path / "raw.png"]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote {tmp_path / 'raw.png'}\n"
    (note,) = err.splitlines()  # most pixels clip at 255: a one-line hint
    assert note.startswith("cyconv: note: ") and "sums to 9" in note and "--normalize" in note
    assert _main(["filter", tmp_path / "in.png", "-k", ones, "--normalize",
                  "-o", tmp_path / "mean.png"]) == 0
    assert capsys.readouterr().err == ""
    _close(_load(tmp_path / "mean.png")[1], _expected(a, np.ones((3, 3)) / 9))
    assert _main(["filter", tmp_path / "in.png", "-k", "laplacian", "--normalize",
                  "-o", tmp_path / "lap.png"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "sums to 0" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "lap.png").exists()


def test_kernels_listing():
    proc = cyconv("kernels")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHAPE", "DESCRIPTION"]
    for name in K.names():
        assert any(line.startswith(name) for line in lines), name
    assert "box:SIZE" in proc.stdout and "gaussian:SIZE[,SIGMA]" in proc.stdout
    assert any(line.startswith("sobel_x") and " 3x3 " in line for line in lines)
    # a family whose size must be given shows no fixed shape
    assert any(line.startswith("gaussian:SIZE") and " any " in line for line in lines)


def test_filter_one_file(tmp_path):
    a = _rgb(tmp_path / "in.png")
    proc = cyconv("filter", tmp_path / "in.png", "-k", "gaussian:5,1.2", "-o",
                  tmp_path / "out.png", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {tmp_path / 'out.png'}\n" and proc.stderr == ""
    mode, got = _load(tmp_path / "out.png")
    assert mode == "RGB"
    _close(got, _expected(a, K.gaussian(5, 1.2)))


def test_filter_options_and_default_output(tmp_path, capsys):
    a = _rgb(tmp_path / "photo.png", seed=3)
    assert _main(["filter", tmp_path / "photo.png", "-k", "sobel_x", "--correlate",
                  "--boundary", "wrap", "--mode", "valid"]) == 0
    assert capsys.readouterr() == (f"wrote {tmp_path / 'photo-filtered.png'}\n", "")
    _, got = _load(tmp_path / "photo-filtered.png")  # default: next to the input
    _close(got, _expected(a, K.sobel_x(), correlate=True, mode="valid", boundary="wrap"))


def test_filter_several_inputs_to_out_dir(tmp_path):
    arrays = [_rgb(tmp_path / f"img{i}.png", seed=i) for i in range(3)]
    gray = np.random.default_rng(9).integers(0, 65536, (10, 12)).astype("<u2")
    Image.frombytes("I;16", (12, 10), gray.tobytes()).save(tmp_path / "deep.png")
    inputs = [tmp_path / f"img{i}.png" for i in range(3)] + [tmp_path / "deep.png"]
    digests = [_digest(p) for p in inputs]
    out = tmp_path / "out" / "nested"  # created
    proc = cyconv("filter", *inputs, "-k", "box:3", "--out-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    assert proc.stdout.splitlines() == [f"created folder {tmp_path / 'out'}",
                                        f"created folder {out}"] + \
        [f"wrote {out / p.name}" for p in inputs]
    for i, a in enumerate(arrays):
        _, got = _load(out / f"img{i}.png")
        _close(got, _expected(a, K.box(3)))
    mode, deep = _load(out / "deep.png")
    assert mode == "I;16"
    ref = np.clip(np.rint(scipy.signal.convolve2d(gray.astype(float), K.box(3), "same", "symm")),
                  0, 65535)
    assert np.abs(deep.astype(int) - ref).max() <= 1
    assert [_digest(p) for p in inputs] == digests
    assert sorted(p.name for p in out.iterdir()) == ["deep.png", "img0.png", "img1.png",
                                                      "img2.png"]  # no temporary files left



def test_progress_bar(tmp_path, capsys):
    for i in range(3):
        _rgb(tmp_path / f"img{i}.png", seed=i, size=(5, 6))
    inputs = [tmp_path / f"img{i}.png" for i in range(3)]
    assert _main(["filter", *inputs, "-k", "box:3", "--out-dir", tmp_path / "o",
                  "--progress"]) == 0
    out, err = capsys.readouterr()
    written = [tmp_path / "o" / p.name for p in inputs]
    assert out == (f"created folder {tmp_path / 'o'}\n"
                   f"wrote 3 images: {', '.join(map(str, written))}\n")
    assert "1/3 img1.png" in err and "3/3" in err and "[" in err and err.endswith("\n")
    assert err.count("\n") == 1  # one line, redrawn with carriage returns
    assert _main(["filter", *inputs, "-k", "box:3", "--out-dir", tmp_path / "o"]) == 0
    # stderr is not a terminal here: no bar, one line per file written
    assert capsys.readouterr() == ("".join(f"wrote {p}\n" for p in written), "")


def test_kernel_from_npy_and_text(tmp_path, monkeypatch):
    a = _rgb(tmp_path / "in.png", seed=5)
    k = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]) / 5
    np.save(tmp_path / "k.npy", k)
    (tmp_path / "k.txt").write_text("# my kernel\n0.2 0.4 0.0\n\n0.0, -0.2, 0.6  # row 2\n")
    (tmp_path / "k.csv").write_text("0.2,0.4,0.0\n0.0,-0.2,0.6\n")
    for name in ("k.npy", "k.txt", "k.csv"):
        if name == "k.csv":  # same parser as .txt: in process
            monkeypatch.chdir(tmp_path)
            assert _main(["filter", "in.png", "-k", name, "-o", f"out-{name}.png"]) == 0
        else:
            proc = cyconv("filter", "in.png", "-k", name, "-o", f"out-{name}.png",
                          cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
        _, got = _load(tmp_path / f"out-{name}.png")
        _close(got, _expected(a, k))


def _error_cases(tmp_path):
    """name -> (args, input files that must stay untouched, text expected in the message)."""
    src = tmp_path / "in.png"
    _rgb(src)
    other = tmp_path / "other.png"
    _rgb(other, seed=1)
    (tmp_path / "garbage.png").write_bytes(b"this is not an image")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "ragged.txt").write_text("1 2 3\n4 5\n")
    (tmp_path / "words.txt").write_text("1 2\nthree four\n")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    (tmp_path / "a_file").write_text("")
    (tmp_path / "sub").mkdir()
    twin = tmp_path / "sub" / "in.png"
    _rgb(twin, seed=2)
    # A float image: PNG holds mode F in no Pillow (mode I only until Pillow 13,
    # which 12.x writes with a DeprecationWarning).
    tiff = tmp_path / "float.tif"
    Image.frombytes("F", (4, 3), np.arange(12, dtype="=f4").tobytes()).save(tiff)
    k = ["-k", "box:3"]
    return {
        "missing image": (["nope.png", *k, "-o", "o.png"], [src], "nope.png"),
        "unreadable image": (["garbage.png", *k, "-o", "o.png"], [src], "garbage.png"),
        "directory as image": (["sub", *k, "-o", "o.png"], [src], "directory"),
        "unknown kernel": (["in.png", "-k", "blurry", "-o", "o.png"], [src], "unknown kernel"),
        "bad kernel params": (["in.png", "-k", "gaussian:5,-1", "-o", "o.png"], [src], "sigma"),
        "missing kernel file": (["in.png", "-k", "nokernel.npy", "-o", "o.png"], [src],
                                "not found"),
        "malformed npy": (["in.png", "-k", "bad.npy", "-o", "o.png"], [src], "malformed"),
        "3-D npy": (["in.png", "-k", "cube.npy", "-o", "o.png"], [src], "2-D"),
        "ragged text": (["in.png", "-k", "ragged.txt", "-o", "o.png"], [src], "malformed"),
        "words in text": (["in.png", "-k", "words.txt", "-o", "o.png"], [src], "line 2"),
        "empty text": (["in.png", "-k", "empty.txt", "-o", "o.png"], [src], "no numbers"),
        "output is input": (["in.png", *k, "-o", "in.png"], [src], "overwrite"),
        "output is input, other spelling": (["in.png", *k, "-o", "sub/../in.png"], [src],
                                            "overwrite"),
        "output is the other input": (["in.png", "other.png", *k, "--out-dir", "."],
                                      [src, other], "overwrite"),
        "out-dir is the inputs' dir": (["in.png", *k, "--out-dir", str(tmp_path)], [src],
                                       "overwrite"),
        "out-dir under a file": (["in.png", *k, "--out-dir", "a_file/out"], [src], "a_file"),
        "out-dir is a file": (["in.png", *k, "--out-dir", "a_file"], [src], "not a directory"),
        "-o under a file": (["in.png", *k, "-o", "a_file/o.png"], [src], "not a directory"),
        "-o with several inputs": (["in.png", "other.png", *k, "-o", "o.png"], [src, other],
                                   "--out-dir"),
        "unknown extension": (["in.png", *k, "-o", "o.xyz"], [src], "format"),
        "unwritable mode": (["float.tif", *k, "-o", "o.png"], [tiff], "cannot write"),
        "no kernel": (["in.png", "-o", "o.png"], [src], "-k"),
        "bad workers": (["in.png", *k, "--workers", "many"], [src], "many"),
        "-o and --out-dir": (["in.png", *k, "-o", "o.png", "--out-dir", "d"], [src],
                             "not allowed"),
        "two inputs, one output": (["in.png", "sub/in.png", *k, "--out-dir", "new"],
                                   [src, twin], "both be written"),
    }


# One case of each kind runs in its own process, `python -m cyconv ...`; the
# variations run through main() in this process (interpreter start-up dominates
# the run time on a busy two-core machine).
SUBPROCESS_ERRORS = ["missing image", "unreadable image", "unknown kernel", "malformed npy",
                     "output is input", "out-dir under a file", "-o with several inputs"]
INPROCESS_ERRORS = ["directory as image", "bad kernel params", "missing kernel file",
                    "3-D npy", "ragged text", "words in text", "empty text",
                    "output is input, other spelling", "output is the other input",
                    "out-dir is the inputs' dir", "out-dir is a file", "-o under a file",
                    "unknown extension", "unwritable mode", "no kernel", "bad workers",
                    "-o and --out-dir", "two inputs, one output"]


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory):
    """Every subprocess error case in its own directory and process, two at a time."""
    jobs = {}
    for name in SUBPROCESS_ERRORS:
        case_dir = tmp_path_factory.mktemp("err")
        args, keep, text = _error_cases(case_dir)[name]
        jobs[name] = (case_dir, args, keep, text, {p: _digest(p) for p in keep},
                      sorted(p.name for p in case_dir.iterdir()))
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(jobs, pool.map(
            lambda job: cyconv("filter", *job[1], cwd=job[0]), jobs.values())))
    return {name: (procs[name],) + jobs[name] for name in jobs}


def _check_error(returncode, stdout, stderr, case_dir, keep, text, before, listing):
    assert returncode == 2, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("cyconv: error: ")
    assert text in lines[0]
    assert "Traceback" not in stderr
    assert {p: _digest(p) for p in keep} == before  # inputs untouched
    assert sorted(p.name for p in case_dir.iterdir()) == listing  # nothing written


@pytest.mark.parametrize("case", SUBPROCESS_ERRORS)
def test_filter_errors(error_runs, case):
    proc, case_dir, _args, keep, text, before, listing = error_runs[case]
    _check_error(proc.returncode, proc.stdout, proc.stderr, case_dir, keep, text, before,
                 listing)


def _main(argv):
    from cyconv.__main__ import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        return exc.code


@pytest.mark.parametrize("case", INPROCESS_ERRORS)
def test_filter_errors_in_process(tmp_path, monkeypatch, capsys, case):
    args, keep, text = _error_cases(tmp_path)[case]
    before = {p: _digest(p) for p in keep}
    listing = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    code = _main(["filter", *args])
    out, err = capsys.readouterr()
    _check_error(code, out, err, tmp_path, keep, text, before, listing)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root can write to read-only directories")
def test_filter_read_only_out_dir(tmp_path):
    _rgb(tmp_path / "in.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = cyconv("filter", "in.png", "-k", "box:3", "--out-dir", "locked", cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2
    assert proc.stderr.startswith("cyconv: error: ") and "not writable" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_without_pillow(tmp_path):
    _rgb(tmp_path / "in.png")
    code = ("import sys; sys.modules['PIL'] = None\n"
            "from cyconv.__main__ import main\n"
            "codes = [main(['filter', 'in.png', '-k', 'box:3', '-o', 'o.png']),\n"
            "         main(['demo', '--out', 'demo'])]\n"
            "print(codes)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=os.environ.copy())
    assert proc.stdout.strip() == "[2, 2]", proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2
    for line, command in zip(lines, ["filter", "demo"]):
        assert line.startswith("cyconv: error: ") and command in line
        assert PIL_HINT in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_progress_bar_on_a_terminal(tmp_path, monkeypatch, capsys):
    for i in range(2):
        _rgb(tmp_path / f"img{i}.png", seed=i, size=(5, 6))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _main(["filter", tmp_path / "img0.png", tmp_path / "img1.png", "-k", "box:3",
                  "--out-dir", tmp_path / "o"]) == 0
    assert "2/2" in capsys.readouterr().err
    assert _main(["filter", tmp_path / "img0.png", "-k", "box:3", "--out-dir",
                  tmp_path / "o1"]) == 0
    assert capsys.readouterr().err == ""  # one input: no bar unless --progress
