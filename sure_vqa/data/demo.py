"""The demo dataset (docs/method.md#datasets): a small VQA dataset in SLAKE's raw format, built offline from the real
medical images that ship inside Python packages, so that the whole study runs on any machine.

`build_demo(out_dir)` writes `imgs/<image folder>/source.png`, `train.json`, `validate.json`, `test.json`
(SLAKE's fields) and `demo_sources.json` (where every image comes from). The SLAKE reader reads the folder as
dataset `demo` (`{DATASET_ROOT_DIR}/demo`).

Every image has facts known from its source (the DICOM header, the package's documentation, what the picture
plainly shows): modality, body region, plane, which organs it contains. Questions are generated from those
facts only, so their answers depend on the image (a model that sees it can learn them) and are never guessed.
Crops of one source image and slices of one volume count as distinct images; they may land in different
parts (train/validate/test), which is fine for a dataset whose job is to exercise the pipeline.

The build is deterministic: every choice comes from a generator seeded by a fixed string, images are resized
with a fixed filter and saved as 8-bit PNG, so the same package versions give the same bytes on every run.
"""

from __future__ import annotations

import functools
import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import DataError

Box = tuple[float, float, float, float]  # a crop: top, left, bottom, right as fractions of the image

TARGET_SIDE = 320  # every image is resized so that its longest side (in physical units) has this many pixels
DEMO_SOURCES_FILE = "demo_sources.json"
PART_FRACTIONS = {"val": 0.15, "test": 0.2}  # per modality; the rest is train

CT, MRI, XRAY, US, FUNDUS, MICROSCOPY = "CT", "MRI", "X-Ray", "Ultrasound", "Fundus", "Microscopy"
# The three modalities SLAKE has: "A or B" modality questions are asked among these.
RADIOLOGY_MODALITIES = (CT, MRI, XRAY)
MODALITY_PHRASES = {
    CT: "a CT image",
    MRI: "an MRI image",
    XRAY: "an X-Ray image",
    US: "an ultrasound image",
    FUNDUS: "a fundus photograph",
    MICROSCOPY: "a microscopy image",
}
MODALITY_OPTIONS = {CT: "a CT", MRI: "an MRI", XRAY: "an X-Ray"}  # as the options of "Is this image A or B?"
PLANES = ("Transverse Plane", "Coronal Plane", "Sagittal Plane")
# The organ system of each organ a question can name (knowledge-graph questions, SLAKE's KG content type).
ORGAN_SYSTEMS = {
    "Brain": "Nervous System",
    "Lung": "Respiratory System",
    "Heart": "Circulatory System",
    "Liver": "Digestive System",
    "Colon": "Digestive System",
    "Kidney": "Urinary System",
    "Spleen": "Lymphatic System",
    "Eye": "Visual System",
}
# Organs that cannot appear in an image of a body part: the "No" answers of "Does the picture contain ...?".
ABSENT_ORGANS = {
    "Head": ("Lung", "Liver", "Kidney", "Heart"),
    "Chest": ("Brain", "Kidney"),
    "Abdomen": ("Brain", "Heart"),
    "Leg": ("Brain", "Lung", "Liver", "Heart"),
    "Shoulder": ("Brain", "Liver", "Kidney"),
    "Pelvic Cavity": ("Brain", "Lung", "Heart"),
    "Eye": ("Lung", "Liver", "Kidney", "Heart"),
}


@dataclass(frozen=True)
class Source:
    """Where an image comes from, for demo_sources.json and data/README_demo.md."""

    package: str
    file: str
    licence: str
    description: str


@dataclass(frozen=True)
class DemoImage:
    """One image of the demo dataset with the facts its questions are generated from.

    `location` is SLAKE's image-level body-region field; `body_part` answers "Which part of the body does this
    image belong to?". `organs` are organs the image certainly shows; `main_organ`/`largest_organ` are set
    only where they are certain. `render` returns the image as 8-bit (grayscale or RGB) PIL image.
    """

    key: str
    source: Source
    detail: str
    modality: str
    location: str
    body_part: str
    render: Callable[[], Image.Image]
    plane: str | None = None
    organs: tuple[str, ...] = ()
    main_organ: str | None = None
    largest_organ: str | None = None
    color: bool = False


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    answer_type: str  # OPEN | CLOSED
    content_type: str
    base_type: str = "vqa"
    triple: tuple[str, str, str] = ("vhead", "_", "_")


# --- reading the packaged images --------------------------------------------------------------------------


def _dicom_path(name: str) -> str:
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
def _dicom_pixels(name: str, frame: int | None = None) -> np.ndarray:
    """Stored pixel values after the modality LUT (Hounsfield units for CT), or RGB for colour files."""
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    path = _dicom_path(name)
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


def _window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The linear VOI window radiologists use (e.g. brain 40/80 HU); written out because it is one line."""
    low = center - width / 2.0
    return np.clip(np.rint((values - low) * (255.0 / width)), 0, 255).astype(np.uint8)


def _percentile_window(values: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """MR and radiographs have no absolute units: window between two percentiles of the image."""
    lo, hi = np.percentile(values, [low, high])
    return _window(values, (lo + hi) / 2.0, max(hi - lo, 1e-6))


@functools.cache
def _nifti_volume(name: str) -> tuple[np.ndarray, tuple[float, float, float]]:
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


def _nifti_slice(name: str, plane: str, index: int) -> tuple[np.ndarray, tuple[float, float]]:
    """A slice shown the radiological way: patient's right on the image's left, anterior/superior at the top."""
    data, (zx, zy, zz) = _nifti_volume(name)
    windowed = _percentile_window(data)  # one window for the whole volume, so slices agree
    if plane == "Transverse Plane":
        piece, spacing = windowed[:, :, index], (zy, zx)
    elif plane == "Sagittal Plane":
        piece, spacing = windowed[index, :, :], (zz, zy)
    else:
        piece, spacing = windowed[:, index, :], (zz, zx)
    return np.fliplr(np.rot90(piece)), spacing


@functools.cache
def _skimage(name: str) -> np.ndarray:
    """One of scikit-image's bundled sample images (these three ship in the wheel; no download)."""
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())


def _to_image(array: np.ndarray, box: Box | None = None, spacing: tuple[float, float] = (1, 1)) -> Image.Image:
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


# --- the catalogue -------------------------------------------------------------------------------------------

_PYDICOM_LICENCE = "pydicom test data (MIT-licensed package; file from the NEMA WG04 / public sample sets)"
_PYDICOM_DATA_LICENCE = "pydicom-data (MIT); file from the NEMA WG04 sample set"


def _ct(
    name: str, center: float, width: float, box: Box | None = None, flip_vertical: bool = False
) -> Callable[[], Image.Image]:
    def render() -> Image.Image:
        windowed = _window(_dicom_pixels(name), center, width)
        return _to_image(windowed[::-1] if flip_vertical else windowed, box)

    return render


@functools.cache
def _gray_windowed(name: str, frame: int | None = None) -> np.ndarray:
    """The whole image windowed once, so that its crops share one window (and the percentiles run once)."""
    return _percentile_window(_dicom_pixels(name, frame))


def _gray(name: str, box: Box | None = None, frame: int | None = None) -> Callable[[], Image.Image]:
    return lambda: _to_image(_gray_windowed(name, frame), box)


def _rgb(name: str, box: Box | None = None, frame: int | None = None) -> Callable[[], Image.Image]:
    return lambda: _to_image(_dicom_pixels(name, frame), box)


def _nifti(name: str, plane: str, index: int) -> Callable[[], Image.Image]:
    def render() -> Image.Image:
        piece, spacing = _nifti_slice(name, plane, index)
        return _to_image(piece, None, spacing)

    return render


def _sk(name: str, box: Box | None = None) -> Callable[[], Image.Image]:
    return lambda: _to_image(_skimage(name), box)


def catalogue() -> list[DemoImage]:
    """Every image of the demo dataset with its facts, in a fixed order."""
    head_ct = Source("pydicom-data", "693_UNCR.dcm", _PYDICOM_DATA_LICENCE, "axial head CT (pydicom issue #693)")
    skull_base_ct = Source(
        "pydicom", "J2K_pixelrep_mismatch.dcm", _PYDICOM_LICENCE, "axial head CT at the skull base (issue #1149)"
    )
    abdomen_ct = Source(
        "pydicom", "explicit_VR-UN.dcm", _PYDICOM_LICENCE,
        "axial contrast CT of the abdomen (pancreas study, The Cancer Imaging Archive)",
    )
    brain_mr = Source(
        "nibabel", "tests/data/anatomical.nii", "nibabel test data (MIT)", "T1 brain MRI volume, 2 mm voxels"
    )
    epi_mr = Source("nibabel", "tests/data/example4d.nii.gz", "nibabel test data (MIT)", "brain EPI MRI, first volume")
    sag_mr = Source("pydicom-data", "emri_small.dcm", "pydicom-data (MIT)", "10-frame sagittal head MRI, 64x64")
    abdomen_mr = Source(
        "pydicom-data", "MR-SIEMENS-DICOM-WithOverlays.dcm", "pydicom-data (MIT); from GDCM's test data",
        "axial T1 VIBE fat-saturated abdominal MRI (liver)",
    )
    shoulder_mr = Source("pydicom-data", "MR2_UNCR.dcm", _PYDICOM_DATA_LICENCE, "oblique coronal T1 shoulder MRI")
    chest_xray = Source("pydicom-data", "RG1_UNCR.dcm", _PYDICOM_DATA_LICENCE, "PA chest radiograph (CR)")
    leg_xray = Source(
        "pydicom-data", "RG3_UNCR.dcm", _PYDICOM_DATA_LICENCE,
        "radiograph of the distal lower leg and ankle (CR, non-ossifying fibroma of the distal tibia)",
    )
    echo = Source(
        "pydicom-data", "color3d_jpeg_baseline.dcm", "pydicom-data (MIT)", "apical four-chamber echocardiogram cine"
    )
    tee = Source("pydicom", "color-pl.dcm", _PYDICOM_LICENCE, "transesophageal echocardiogram with colour Doppler")
    pelvis_us = Source(
        "pydicom-data", "gdcm-US-ALOKA-16.dcm", "pydicom-data (MIT); from GDCM's test data",
        "pelvic ultrasound, two panes",
    )
    retina = Source(
        "scikit-image", "skimage.data.retina()", "CC0 (Wikimedia, Mikael Häggström)",
        "fundus photograph, normal left eye",
    )
    microaneurysms = Source(
        "scikit-image", "skimage.data.microaneurysms()", "CC0 (HRF database, Andreas Maier)",
        "green channel of a fundus photograph with microaneurysms",
    )
    ihc = Source(
        "scikit-image", "skimage.data.immunohistochemistry()", "no known copyright restrictions (CMMI)",
        "immunohistochemistry of colonic glands (DAB, hematoxylin)",
    )

    head = {"location": "Brain", "body_part": "Head", "organs": ("Brain",), "main_organ": "Brain",
            "largest_organ": "Brain"}
    chest_x = {"location": "Lung", "body_part": "Chest", "plane": "Coronal Plane"}
    abdomen = {"location": "Abdomen", "body_part": "Abdomen"}
    leg = {"location": "Leg", "body_part": "Leg"}
    heart = {"location": "Chest_heart", "body_part": "Chest", "organs": ("Heart",), "main_organ": "Heart",
             "largest_organ": "Heart"}
    eye = {"location": "Eye", "body_part": "Eye", "organs": ("Eye",), "main_organ": "Eye"}
    axial, coronal, sagittal = PLANES

    images = [
        # CT
        DemoImage("ct_head_brain_window", head_ct, "brain window 40/80 HU", CT, plane=axial,
                  render=_ct("693_UNCR.dcm", 40, 80), **head),
        DemoImage("ct_head_brain_window_crop", head_ct, "brain window 40/80 HU, crop on the head", CT, plane=axial,
                  render=_ct("693_UNCR.dcm", 40, 80, box=(0.1, 0.3, 0.95, 1.0)), **head),
        DemoImage("ct_head_bone_window", head_ct, "bone window 500/2000 HU", CT, plane=axial,
                  render=_ct("693_UNCR.dcm", 500, 2000), **head),
        DemoImage("ct_skull_base", skull_base_ct, "brain window 40/80 HU", CT, plane=axial,
                  render=_ct("J2K_pixelrep_mismatch.dcm", 40, 80), **head),
        DemoImage("ct_skull_base_crop", skull_base_ct, "brain window 40/80 HU, central crop", CT, plane=axial,
                  render=_ct("J2K_pixelrep_mismatch.dcm", 40, 80, box=(0.3, 0.2, 0.95, 0.8)), **head),
        DemoImage("ct_abdomen", abdomen_ct, "soft-tissue window 40/400 HU, flipped to the standard orientation",
                  CT, plane=axial, render=_ct("explicit_VR-UN.dcm", 40, 400, flip_vertical=True),
                  organs=("Liver", "Kidney", "Spleen"), main_organ="Liver", largest_organ="Liver", **abdomen),
        DemoImage("ct_abdomen_liver", abdomen_ct, "soft-tissue window, crop on the liver (patient's right)", CT,
                  plane=axial, render=_ct("explicit_VR-UN.dcm", 40, 400, box=(0.25, 0.12, 0.8, 0.55),
                                          flip_vertical=True),
                  organs=("Liver", "Kidney"), main_organ="Liver", largest_organ="Liver", **abdomen),
        DemoImage("ct_abdomen_left", abdomen_ct, "soft-tissue window, crop on the patient's left", CT,
                  plane=axial, render=_ct("explicit_VR-UN.dcm", 40, 400, box=(0.25, 0.5, 0.8, 0.92),
                                          flip_vertical=True),
                  organs=("Kidney", "Spleen"), **abdomen),
        DemoImage("ct_abdomen_kidneys", abdomen_ct, "soft-tissue window, crop on both kidneys", CT, plane=axial,
                  render=_ct("explicit_VR-UN.dcm", 40, 400, box=(0.45, 0.25, 0.8, 0.75), flip_vertical=True),
                  organs=("Kidney",), **abdomen),
        DemoImage("ct_abdomen_bone_window", abdomen_ct, "bone window 400/1800 HU", CT, plane=axial,
                  render=_ct("explicit_VR-UN.dcm", 400, 1800, flip_vertical=True),
                  organs=("Liver", "Kidney", "Spleen"), main_organ="Liver", largest_organ="Liver", **abdomen),
    ]
    # MRI: slices of two brain volumes, a sagittal head series, an abdomen and a shoulder
    for index in (8, 12, 16):
        images.append(DemoImage(f"mr_brain_t1_axial_{index}", brain_mr, f"axial slice {index}", MRI, plane=axial,
                                render=_nifti("anatomical.nii", axial, index), **head))
    for index in (13, 19):
        images.append(DemoImage(f"mr_brain_t1_sagittal_{index}", brain_mr, f"sagittal slice {index}", MRI,
                                plane=sagittal, render=_nifti("anatomical.nii", sagittal, index), **head))
    for index in (18, 26):
        images.append(DemoImage(f"mr_brain_t1_coronal_{index}", brain_mr, f"coronal slice {index}", MRI,
                                plane=coronal, render=_nifti("anatomical.nii", coronal, index), **head))
    for index in (6, 9, 12, 15, 18):
        images.append(DemoImage(f"mr_brain_epi_axial_{index}", epi_mr, f"axial slice {index}", MRI, plane=axial,
                                render=_nifti("example4d.nii.gz", axial, index), **head))
    for frame in (0, 3, 6, 9):
        images.append(DemoImage(f"mr_head_sagittal_{frame}", sag_mr, f"frame {frame}", MRI, plane=sagittal,
                                render=_gray("emri_small.dcm", frame=frame), **head))
    images += [
        DemoImage("mr_abdomen", abdomen_mr, "whole slice", MRI, plane=axial, render=_gray(abdomen_mr.file),
                  organs=("Liver", "Kidney", "Spleen"), main_organ="Liver", largest_organ="Liver", **abdomen),
        DemoImage("mr_abdomen_liver", abdomen_mr, "crop on the liver (patient's right)", MRI, plane=axial,
                  render=_gray(abdomen_mr.file, box=(0.2, 0.05, 0.8, 0.55)),
                  organs=("Liver", "Kidney"), main_organ="Liver", largest_organ="Liver", **abdomen),
        DemoImage("mr_abdomen_left", abdomen_mr, "crop on the patient's left", MRI, plane=axial,
                  render=_gray(abdomen_mr.file, box=(0.2, 0.45, 0.8, 0.95)), organs=("Kidney", "Spleen"),
                  **abdomen),
        DemoImage("mr_shoulder", shoulder_mr, "whole slice", MRI, plane=coronal, render=_gray("MR2_UNCR.dcm"),
                  location="Shoulder", body_part="Shoulder"),
        DemoImage("mr_shoulder_crop", shoulder_mr, "crop on the humeral head", MRI, plane=coronal,
                  render=_gray("MR2_UNCR.dcm", box=(0.15, 0.15, 0.75, 0.75)), location="Shoulder",
                  body_part="Shoulder"),
    ]
    # X-Ray: a chest and a leg radiograph, whole and cropped
    chest_crops = [
        ("full", None, ("Lung", "Heart"), "Lung"),
        ("right_lung", (0.08, 0.03, 0.8, 0.5), ("Lung",), "Lung"),
        ("left_lung", (0.08, 0.5, 0.8, 0.97), ("Lung", "Heart"), "Lung"),
        ("upper", (0.0, 0.0, 0.5, 1.0), ("Lung",), "Lung"),
        ("lower", (0.45, 0.0, 1.0, 1.0), ("Lung", "Heart"), None),
        ("centre", (0.2, 0.2, 0.8, 0.8), ("Lung", "Heart"), None),
        ("wide_centre", (0.15, 0.1, 0.7, 0.9), ("Lung", "Heart"), "Lung"),
        ("right_upper", (0.05, 0.0, 0.55, 0.55), ("Lung",), "Lung"),
    ]
    for name, box, organs, main in chest_crops:
        images.append(DemoImage(f"xray_chest_{name}", chest_xray, "whole image" if box is None else f"crop {name}",
                                XRAY, render=_gray("RG1_UNCR.dcm", box=box), organs=organs, main_organ=main,
                                largest_organ=main, **chest_x))
    leg_crops = [
        ("full", None),
        ("upper", (0.0, 0.25, 0.5, 0.95)),
        ("lower", (0.5, 0.25, 1.0, 0.95)),
        ("centre", (0.3, 0.35, 0.8, 0.85)),
        ("ankle", (0.65, 0.35, 1.0, 0.85)),
        ("shaft", (0.0, 0.4, 0.45, 0.85)),
    ]
    for name, box in leg_crops:
        images.append(DemoImage(f"xray_leg_{name}", leg_xray, "whole image" if box is None else f"crop {name}",
                                XRAY, render=_gray("RG3_UNCR.dcm", box=box), **leg))
    # Ultrasound
    for frame in (0, 40, 80):
        images.append(DemoImage(f"us_echo_{frame}", echo, f"frame {frame}", US,
                                render=_rgb("color3d_jpeg_baseline.dcm", frame=frame), **heart))
    images += [
        DemoImage("us_tee_doppler", tee, "whole image", US, render=_rgb("color-pl.dcm"), color=True, **heart),
        DemoImage("us_pelvis_left", pelvis_us, "left pane", US,
                  render=_rgb("gdcm-US-ALOKA-16.dcm", box=(0.1, 0.02, 0.92, 0.5)),
                  location="Pelvic Cavity", body_part="Pelvic Cavity"),
        DemoImage("us_pelvis_right", pelvis_us, "right pane", US,
                  render=_rgb("gdcm-US-ALOKA-16.dcm", box=(0.1, 0.5, 0.92, 0.98)),
                  location="Pelvic Cavity", body_part="Pelvic Cavity"),
    ]
    # Fundus photographs and histology
    images += [
        DemoImage("fundus_retina", retina, "whole image", FUNDUS, render=_sk("retina"), color=True, **eye),
        DemoImage("fundus_optic_disc", retina, "crop on the optic disc", FUNDUS,
                  render=_sk("retina", box=(0.25, 0.0, 0.7, 0.45)), color=True, **eye),
        DemoImage("fundus_macula", retina, "crop on the macula", FUNDUS,
                  render=_sk("retina", box=(0.25, 0.3, 0.75, 0.8)), color=True, **eye),
        DemoImage("fundus_microaneurysms", microaneurysms, "whole image", FUNDUS, render=_sk("microaneurysms"),
                  **eye),
        DemoImage("microscopy_colon", ihc, "whole image", MICROSCOPY, render=_sk("immunohistochemistry"),
                  color=True, location="Abdomen", body_part="Abdomen", organs=("Colon",), main_organ="Colon"),
        DemoImage("microscopy_colon_upper", ihc, "upper half", MICROSCOPY,
                  render=_sk("immunohistochemistry", box=(0.0, 0.0, 0.5, 1.0)), color=True, location="Abdomen",
                  body_part="Abdomen", organs=("Colon",), main_organ="Colon"),
        DemoImage("microscopy_colon_lower_left", ihc, "lower-left quarter", MICROSCOPY,
                  render=_sk("immunohistochemistry", box=(0.5, 0.0, 1.0, 0.5)), color=True, location="Abdomen",
                  body_part="Abdomen", organs=("Colon",), main_organ="Colon"),
    ]
    return images


# --- questions ---------------------------------------------------------------------------------------------


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def questions_for(image: DemoImage, rng: random.Random) -> list[Question]:
    """SLAKE-style questions whose answers follow from the image's facts (one image's questions, in order)."""
    qs: list[Question] = []
    # Modality: open, yes/no (half about another modality), and "A or B" among SLAKE's three.
    qs.append(Question("What modality is used to take this image?", image.modality, "OPEN", "Modality"))
    others = [m for m in MODALITY_PHRASES if m != image.modality]
    asked = image.modality if rng.random() < 0.5 else rng.choice(others)
    qs.append(Question(f"Is this {MODALITY_PHRASES[asked]}?", _yes_no(asked == image.modality), "CLOSED", "Modality"))
    if image.modality in RADIOLOGY_MODALITIES:
        pair = [image.modality, rng.choice([m for m in RADIOLOGY_MODALITIES if m != image.modality])]
        rng.shuffle(pair)
        qs.append(Question(f"Is this image {MODALITY_OPTIONS[pair[0]]} or {MODALITY_OPTIONS[pair[1]]}?",
                           image.modality, "CLOSED", "Modality"))
    # Body region (SLAKE files these questions under Position).
    qs.append(Question("Which part of the body does this image belong to?", image.body_part, "OPEN", "Position"))
    other_parts = sorted({p for p in ABSENT_ORGANS if p != image.body_part})
    part = image.body_part if rng.random() < 0.5 else rng.choice(other_parts)
    qs.append(Question(f"Is this an image of the {part.lower()}?", _yes_no(part == image.body_part), "CLOSED",
                       "Position"))
    # Organs: the main one, one certainly present, one certainly absent.
    if image.main_organ:
        qs.append(Question("What is the main organ in the image?", image.main_organ, "OPEN", "Organ"))
    if image.organs:
        present = rng.choice(image.organs)
        qs.append(Question(f"Does the picture contain the {present.lower()}?", "Yes", "CLOSED", "Organ"))
    absent = rng.choice(ABSENT_ORGANS[image.body_part])
    qs.append(Question(f"Does the picture contain the {absent.lower()}?", "No", "CLOSED", "Organ"))
    # Plane, where the image has one.
    if image.plane:
        qs.append(Question("In what plane is this image scanned?", image.plane, "OPEN", "Plane"))
        plane = image.plane if rng.random() < 0.5 else rng.choice([p for p in PLANES if p != image.plane])
        qs.append(Question(f"Is this image taken in the {plane.split()[0].lower()} plane?",
                           _yes_no(plane == image.plane), "CLOSED", "Plane"))
    # Size: the largest organ, where it is certain.
    if image.largest_organ:
        qs.append(Question("Which is the largest organ in the picture?", image.largest_organ, "OPEN", "Size"))
        smaller = [o for o in image.organs if o != image.largest_organ] or list(ABSENT_ORGANS[image.body_part])
        organ = image.largest_organ if rng.random() < 0.5 else rng.choice(smaller)
        qs.append(Question(f"Is the {organ.lower()} the largest organ in the picture?",
                           _yes_no(organ == image.largest_organ), "CLOSED", "Size"))
    # Colour: from the image itself.
    options = ["color", "grayscale"]
    rng.shuffle(options)
    qs.append(Question(f"Is this image in {options[0]} or {options[1]}?", "Color" if image.color else "Grayscale",
                       "CLOSED", "Color"))
    # Knowledge graph: the organ system of the main organ.
    if image.main_organ in ORGAN_SYSTEMS:
        system = ORGAN_SYSTEMS[image.main_organ]
        qs.append(Question("Which organ system does the main organ in this image belong to?", system, "OPEN", "KG",
                           base_type="kvqa", triple=(image.main_organ, "belong_to", system)))
    return qs


# --- assembling the dataset --------------------------------------------------------------------------------


def assign_parts(images: list[DemoImage]) -> dict[str, str]:
    """image key -> train/val/test: per modality, a seeded shuffle, then PART_FRACTIONS (at least one each)."""
    parts: dict[str, str] = {}
    by_modality: dict[str, list[str]] = {}
    for image in images:
        by_modality.setdefault(image.modality, []).append(image.key)
    for modality, keys in sorted(by_modality.items()):
        keys = sorted(keys)
        random.Random(f"demo-parts:{modality}").shuffle(keys)
        n_val = max(1, round(PART_FRACTIONS["val"] * len(keys)))
        n_test = max(1, round(PART_FRACTIONS["test"] * len(keys)))
        for i, key in enumerate(keys):
            parts[key] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return parts


def image_name(img_id: int) -> str:
    """SLAKE's layout: one folder per image under imgs/ (`xmlab0/source.jpg` there, `demo0/source.png` here)."""
    return f"demo{img_id}/source.png"


def _entries(images: list[DemoImage]) -> Iterator[tuple[str, DemoImage, int, list[Question]]]:
    parts = assign_parts(images)
    for img_id, image in enumerate(images):
        yield parts[image.key], image, img_id, questions_for(image, random.Random(f"demo-questions:{image.key}"))


def _write_dataset(folder: Path, images: list[DemoImage]) -> None:
    """Writes every file of the dataset into `folder` (a fresh temporary folder)."""
    rows: dict[str, list[dict[str, Any]]] = {part: [] for part in naming.PART_FILES}
    sources: list[dict[str, Any]] = []
    entries = sorted(_entries(images), key=lambda e: (list(naming.PART_FILES).index(e[0]), e[2]))
    qid = 0
    for part, image, img_id, questions in entries:
        name = image_name(img_id)
        path = folder / naming.SLAKE_IMAGE_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.render().save(path, format="PNG")
        sources.append({
            "img_id": img_id, "img_name": name, "part": part, "key": image.key, "package": image.source.package,
            "file": image.source.file, "licence": image.source.licence, "description": image.source.description,
            "detail": image.detail, "modality": image.modality, "location": image.location,
        })
        for q in questions:
            rows[part].append({
                "img_id": img_id, "img_name": name, "question": q.question, "answer": q.answer, "q_lang": "en",
                "location": image.location, "modality": image.modality, "answer_type": q.answer_type,
                "base_type": q.base_type, "content_type": q.content_type, "triple": list(q.triple), "qid": qid,
            })
            qid += 1
    for part, file_name in naming.PART_FILES.items():
        (folder / file_name).write_text(json.dumps(rows[part], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / DEMO_SOURCES_FILE).write_text(json.dumps(sources, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def build_demo(out_dir: Path) -> Path:
    """Builds the demo dataset into `out_dir` (created if missing) and returns it.

    The dataset is written to a temporary folder beside `out_dir` first. A file that already exists in
    `out_dir` is never replaced: if it has the same bytes it is left as it is (so a second run does nothing
    and files added later, such as split_files/, are kept); if it differs, DataError names it and nothing
    is written. New files are moved in one by one with os.replace.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"demo dataset folder {out_dir} exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    images = catalogue()
    try:
        _build_into(out_dir, images)
    finally:  # the decoded source images are only needed while building
        for cached in (_dicom_pixels, _gray_windowed, _nifti_volume, _skimage):
            cached.cache_clear()
    return out_dir


def _build_into(out_dir: Path, images: list[DemoImage]) -> None:
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.building-", dir=out_dir.parent) as tmp:
        staging = Path(tmp)
        _write_dataset(staging, images)
        files = _files(staging)
        conflicts = [
            rel for rel in files
            if (out_dir / rel).exists() and (out_dir / rel).read_bytes() != (staging / rel).read_bytes()
        ]
        if conflicts:
            shown = ", ".join(str(out_dir / rel) for rel in conflicts[:5])
            raise DataError(
                f"{out_dir} already holds {len(conflicts)} file(s) that differ from the demo dataset this version "
                f"builds ({shown}{', ...' if len(conflicts) > 5 else ''}); nothing was changed. Remove the folder "
                "or choose another OUT_DIR."
            )
        # Images first, the question files last: once train.json exists, everything it names exists.
        for rel in sorted(files, key=lambda r: (len(r.parts) == 1, str(r))):
            target = out_dir / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, target)


def summary(dataset_dir: Path) -> str:
    """Counts of images and questions per part, modality and content type (printed by data/build_demo.py)."""
    lines = []
    for file_name in naming.PART_FILES.values():
        rows = json.loads((Path(dataset_dir) / file_name).read_text(encoding="utf-8"))
        images = {r["img_id"]: r["modality"] for r in rows}
        lines.append(
            f"{file_name:14s} {len(images):3d} images {len(rows):4d} questions | "
            f"modality: {dict(sorted(Counter(images.values()).items()))} | "
            f"content_type: {dict(sorted(Counter(r['content_type'] for r in rows).items()))}"
        )
    return "\n".join(lines)

