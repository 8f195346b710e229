"""The demo's images: where each comes from and the facts known of it (modality, body region, plane, organs),
from which its questions are generated (data/README_demo.md)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sure_vqa.demo.dataset.packaged import (
    Box,
    dicom_pixels,
    nifti_slice,
    percentile_window,
    skimage_image,
    to_image,
    window,
)

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


_PYDICOM_LICENCE = "pydicom test data (MIT-licensed package; file from the NEMA WG04 / public sample sets)"
_PYDICOM_DATA_LICENCE = "pydicom-data (MIT); file from the NEMA WG04 sample set"


def _ct(
    name: str, center: float, width: float, box: Box | None = None, flip_vertical: bool = False
) -> Callable[[], Image.Image]:
    def render() -> Image.Image:
        windowed = window(dicom_pixels(name), center, width)
        return to_image(windowed[::-1] if flip_vertical else windowed, box)

    return render


@functools.cache
def gray_windowed(name: str, frame: int | None = None) -> np.ndarray:
    """The whole image windowed once, so that its crops share one window (and the percentiles run once)."""
    return percentile_window(dicom_pixels(name, frame))


def _gray(name: str, box: Box | None = None, frame: int | None = None) -> Callable[[], Image.Image]:
    return lambda: to_image(gray_windowed(name, frame), box)


def _rgb(name: str, box: Box | None = None, frame: int | None = None) -> Callable[[], Image.Image]:
    return lambda: to_image(dicom_pixels(name, frame), box)


def _nifti(name: str, plane: str, index: int) -> Callable[[], Image.Image]:
    def render() -> Image.Image:
        piece, spacing = nifti_slice(name, plane, index)
        return to_image(piece, None, spacing)

    return render


def _sk(name: str, box: Box | None = None) -> Callable[[], Image.Image]:
    return lambda: to_image(skimage_image(name), box)


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


