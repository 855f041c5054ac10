"""Regenerate the README's pictures in docs/demo/ with `cyconv demo`.

    python tools/make_demo_images.py

tests/test_readme.py checks that the committed pictures are what the demo
writes today (within one level per pixel: the last bit of float rounding
may differ between kernel levels).
"""

import sys
from pathlib import Path

from cyconv.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["demo", "--out", str(Path(__file__).resolve().parent.parent / "docs" / "demo")]))
