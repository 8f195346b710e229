"""The corruption grid: an image under each corruption (rows) and strength (columns), to see what the
settings do before a study uses them (docs/images_and_corruptions.md).

    sure-vqa corruptions image=IMAGE out=OUT.png [seed=N]
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from sure_vqa.atomic_io import write_bytes_atomic
from sure_vqa.images import corruptions
from sure_vqa.images.loading import load_image, to_rgb
from sure_vqa.settings import checked, setting

_GRID_CELL = 256  # the longest side of a cell in the grid, in pixels (corrupted at full size, then shown smaller)
_LABEL_HEIGHT = 16


def grid_image(image: Image.Image, seed: int = 0, qid: str = "grid") -> Image.Image:
    """One row per corruption, one column per strength after the original; each cell is that corruption alone."""
    original = np.asarray(to_rgb(image), dtype=np.uint8)
    names = corruptions.names()
    rows: list[list[tuple[str, np.ndarray]]] = []
    for name in names:
        row = [("original", original)]
        for level in corruptions.STRENGTHS:
            probabilities = {other: float(other == name) for other in names}
            strengths = {other: level for other in names}
            corrupted, params = corruptions.corrupt(original, seed, qid, probabilities, strengths)
            row.append((f"{name} {level}: {corruptions.get(name).describe(params[name])}", corrupted))
        rows.append(row)

    height, width = original.shape[:2]
    scale = min(1.0, _GRID_CELL / max(height, width))
    cell_w, cell_h = max(1, round(width * scale)), max(1, round(height * scale))
    cols = len(corruptions.STRENGTHS) + 1
    pad = 4
    sheet = Image.new("RGB", (cols * (cell_w + pad) + pad, len(rows) * (cell_h + _LABEL_HEIGHT + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (label, array) in enumerate(row):
            x, y = pad + c * (cell_w + pad), pad + r * (cell_h + _LABEL_HEIGHT + pad)
            draw.text((x, y), label, fill="black")
            cell = Image.fromarray(array).resize((cell_w, cell_h), Image.Resampling.BILINEAR)
            sheet.paste(cell, (x, y + _LABEL_HEIGHT))
    return sheet


def write_png(image: Image.Image, out_path: str | Path) -> Path:
    """The PNG is encoded in memory and written atomically, so a crash never leaves half a file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return write_bytes_atomic(out_path, buffer.getvalue())


@dataclass(frozen=True)
class GridSettings:
    """`sure-vqa corruptions`' settings (config/commands/corruptions.yaml takes them from /settings/corruptions)."""

    image: str = setting()  # the image to corrupt (any format PIL reads)
    out: str = setting()  # the PNG file to write
    seed: int = setting(0, minimum=0)  # the run seed of the drawn parameters


def grid_command(cfg: Any) -> None:
    """`sure-vqa corruptions` (config/commands/corruptions.yaml): writes the grid of one image."""
    settings = checked(GridSettings, cfg)
    image = Path(settings.image)
    sheet = grid_image(load_image(image), seed=settings.seed, qid=image.name)
    print(f"wrote {write_png(sheet, settings.out)}")
