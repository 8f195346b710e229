"""Reading the medical images that ship inside Python packages (pydicom, pydicom-data, nibabel, scikit-image)
and turning them into 8-bit images of the demo's size (docs/method.md#datasets)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from sure_vqa.config import DataError

Box = tuple[float, float, float, float]  # a crop: top, left, bottom, right as fractions of the image
TARGET_SIDE = 320  # every image is resized so that its longest side (in physical units) has this many pixels


def dicom_path(name: str) -> str:
    """A test file from pydicom or pydicom-data; never downloads (pydicom would otherwise try the network)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        raise DataError(
            f"DICOM test file {name} is not installed; it ships in pydicom or pydicom-data "
            "(pip install pydicom-data==1.0.0)"
        )
    return str(path)


@functools.cache
def dicom_pixels(name: str, frame: int | None = None) -> np.ndarray:
    """Stored pixel values after the modality LUT (Hounsfield units for CT), or RGB for colour files."""
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    path = dicom_path(name)
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    pixels = pixel_array(path, index=frame)  # decodes only the requested frame of a multi-frame file
    if dataset.PhotometricInterpretation == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)
        return (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb.astype(np.uint8)
    if pixels.ndim == 3:  # RGB (pydicom has converted YBR to RGB)
        return pixels.astype(np.uint8)
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    if dataset.PhotometricInterpretation == "MONOCHROME1":  # bright means low signal: invert to display
        values = values.max() + values.min() - values
    return values


def window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The linear VOI window radiologists use (e.g. brain 40/80 HU); written out because it is one line."""
    low = center - width / 2.0
    return np.clip(np.rint((values - low) * (255.0 / width)), 0, 255).astype(np.uint8)


def percentile_window(values: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """MR and radiographs have no absolute units: window between two percentiles of the image."""
    lo, hi = np.percentile(values, [low, high])
    return window(values, (lo + hi) / 2.0, max(hi - lo, 1e-6))


@functools.cache
def nifti_volume(name: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A nibabel test volume in RAS+ orientation (first volume of a 4-D file) and its voxel sizes."""
    import nibabel as nib
    from nibabel.testing import data_path

    path = Path(data_path) / name
    if not path.is_file():
        raise DataError(f"nibabel test volume {path} is missing; reinstall nibabel")
    image = nib.as_closest_canonical(nib.load(path))
    data = np.asanyarray(image.dataobj).astype(np.float64)
    if data.ndim == 4:
        data = data[..., 0]
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return data, zooms  # type: ignore[return-value]


def nifti_slice(name: str, plane: str, index: int) -> tuple[np.ndarray, tuple[float, float]]:
    """A slice shown the radiological way: patient's right on the image's left, anterior/superior at the top."""
    data, (zx, zy, zz) = nifti_volume(name)
    windowed = percentile_window(data)  # one window for the whole volume, so slices agree
    if plane == "Transverse Plane":
        piece, spacing = windowed[:, :, index], (zy, zx)
    elif plane == "Sagittal Plane":
        piece, spacing = windowed[index, :, :], (zz, zy)
    else:
        piece, spacing = windowed[:, index, :], (zz, zx)
    return np.fliplr(np.rot90(piece)), spacing


@functools.cache
def skimage_image(name: str) -> np.ndarray:
    """One of scikit-image's bundled sample images (these three ship in the wheel; no download)."""
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())


def to_image(array: np.ndarray, box: Box | None = None, spacing: tuple[float, float] = (1, 1)) -> Image.Image:
    """Crops `box` (top, left, bottom, right as fractions) and resizes to TARGET_SIDE, honouring pixel spacing."""
    if box is not None:
        height, width = array.shape[:2]
        top, left, bottom, right = box
        array = array[round(top * height) : round(bottom * height), round(left * width) : round(right * width)]
    image = Image.fromarray(np.ascontiguousarray(array))
    physical_h, physical_w = image.height * spacing[0], image.width * spacing[1]
    scale = TARGET_SIDE / max(physical_h, physical_w)
    size = (max(1, round(physical_w * scale)), max(1, round(physical_h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


