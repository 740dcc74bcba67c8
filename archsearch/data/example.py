"""A small RGB image folder made from embedded data, for examples and tests that must run offline.

No pip package in reach ships a small RGB image set offline, so this writes one: scikit-learn's 1,797
8x8 digits, upscaled, each drawn in a random colour on a random dark background, as PNG files in the
``ImageFolder`` layout (``ROOT/train/<digit>/*.png`` and ``ROOT/val/<digit>/*.png``). Colour carries
no label information, so a network must still read the shape; it is the same problem as ``digits``
in three channels, which makes an RGB stem (a torchvision network's) meet real pixels::

    python -m archsearch.data.example runs/digits-rgb          # then --data imagefolder:runs/digits-rgb
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["write_digits_folder"]


def write_digits_folder(root: str | os.PathLike[str], *, size: int = 16, val_fraction: float = 0.2,
                        limit: int | None = None, seed: int = 0) -> Path:
    """Write coloured digits as PNGs under ``root`` (``train/`` and, unless ``val_fraction`` is 0, ``val/``);
    ``limit`` keeps the first ``limit`` digits. Returns ``root``. Same files for the same arguments."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.images, bunch.target
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    rng = np.random.default_rng(seed)
    root = Path(root)
    n_val = int(round(len(labels) * val_fraction))
    held = set(rng.permutation(len(labels))[:n_val].tolist())
    for i, (image, label) in enumerate(zip(images, labels)):
        ink = rng.uniform(0.5, 1.0, 3)
        paper = rng.uniform(0.0, 0.3, 3)
        alpha = (image / 16.0)[..., None]
        rgb = (255 * (alpha * ink + (1 - alpha) * paper)).round().astype(np.uint8)
        picture = Image.fromarray(rgb, "RGB").resize((size, size), Image.BILINEAR)
        folder = root / ("val" if i in held else "train") / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        picture.save(folder / f"{i:04d}.png")
    return root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m archsearch.data.example ROOT", file=sys.stderr)
        return 2
    root = write_digits_folder(args[0])
    print(f"wrote {root}/train and {root}/val (coloured 16x16 digits, 10 classes); use --data imagefolder:{root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
