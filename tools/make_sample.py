"""Draw the bundled demo image src/cyconv/data/sample.png (run once; needs Pillow).

A 256x256 RGB scene with flat regions, hard edges in every direction,
gradients, fine stripes and a little noise: enough to see what blurs,
edge filters and sharpening do.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

size = 256
yy, xx = np.mgrid[0:size, 0:size]
sky = np.stack([40 + 0.3 * yy, 90 + 0.5 * yy, 200 - 0.2 * yy], axis=-1)
img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
draw = ImageDraw.Draw(img)
draw.ellipse((30, 30, 110, 110), fill=(250, 200, 40))                # sun
draw.rectangle((140, 120, 230, 230), fill=(180, 40, 40))             # house
draw.polygon([(130, 120), (185, 70), (240, 120)], fill=(90, 30, 20))  # roof
draw.rectangle((170, 170, 200, 230), fill=(60, 40, 30))              # door
for x in range(10, 120, 6):                                          # fence: fine stripes
    draw.rectangle((x, 180, x + 2, 240), fill=(235, 235, 220))
draw.line((0, 240, 255, 200), fill=(20, 120, 30), width=5)           # slanted edge
rng = np.random.default_rng(0)
noisy = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (size, size, 3))
out = Path(__file__).resolve().parents[1] / "src" / "cyconv" / "data" / "sample.png"
Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, optimize=True)
print(f"wrote {out} ({out.stat().st_size} bytes)")
