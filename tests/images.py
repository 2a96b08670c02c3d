"""Small image files the tests write (nothing downloads)."""

from pathlib import Path

import numpy as np


def write_image_folder(root: Path, painters: dict, n_per_class: int, side: int,
                       noise: float, seed: int = 0) -> Path:
    """``root/images/<class>/<i>.png``: grey noise up to ``noise`` (0-255), each class
    marked by its painter (``painters[name](pixels)`` draws into the uint8 array).
    Returns the ``images`` folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, paint in painters.items():
        (root / "images" / label).mkdir(parents=True)
        for i in range(n_per_class):
            pixels = (rng.random((side, side)) * noise).astype(np.uint8)
            paint(pixels)
            Image.fromarray(pixels).save(root / "images" / label / f"{i}.png")
    return root / "images"
