"""Image and label files as they come from the wild: every format is read as MMSegmentation reads
it (OpenCV for images, Pillow for labels) or refused with an error naming the file."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from swinseg.data import read_image
from swinseg.data.dataset import SegDataset, read_label
from swinseg.data.io import as_rgb

RGB = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)


def _encode(ext: str, array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, array)
    assert ok
    return data.tobytes()


def _pillow_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.jpg", b"", "is empty"),
        ("text.jpg", b"just some notes, not a picture", "cannot decode"),
        ("truncated.jpg", _encode(".jpg", RGB)[:600], "cannot decode"),
        ("truncated.png", _encode(".png", RGB)[:-40], "cannot decode"),
        ("corrupt.png", _encode(".png", RGB)[:100] + b"\x00" * 50 + _encode(".png", RGB)[150:], "cannot decode"),
    ],
)
def test_unreadable_images_name_the_file(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as err:
        read_image(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_image_formats_read_as_opencv_colour(tmp_path):
    bgr = RGB[:, :, ::-1]
    cases = {
        "gray.png": (_encode(".png", RGB[:, :, 0]), np.repeat(RGB[:, :, :1], 3, axis=2)),
        "rgba.png": (_encode(".png", np.dstack([bgr, np.full(RGB.shape[:2], 7, np.uint8)])), RGB),  # alpha dropped
        "deep.png": (_encode(".png", bgr.astype(np.uint16) * 256 + 100), RGB),  # 16 bit -> its high byte
        "palette.png": (
            _pillow_bytes(Image.fromarray(RGB).quantize(16), "PNG"),
            np.asarray(Image.fromarray(RGB).quantize(16).convert("RGB")),
        ),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        image = read_image(tmp_path / name)
        assert image.dtype == np.uint8 and image.shape == (30, 40, 3), name
        assert np.array_equal(image, expected), name


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    flat = np.zeros((32, 48, 3), np.uint8)
    flat[:, :16], flat[:, 16:32], flat[:, 32:] = (200, 30, 30), (30, 200, 30), (30, 30, 200)
    path = tmp_path / "cmyk.jpg"
    path.write_bytes(_pillow_bytes(Image.fromarray(flat).convert("CMYK"), "JPEG", quality=100))
    image = read_image(path)
    reference = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (32, 48, 3)
    assert np.abs(image.astype(int) - reference.astype(int)).max() <= 2
    assert np.abs(image[4:-4, 4:12].astype(int) - (200, 30, 30)).max() <= 8


def test_exif_orientation_is_applied_as_mmsegmentation_does(tmp_path):
    marked = np.zeros((30, 40, 3), np.uint8)
    marked[:10, :10] = 255  # a white top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_pillow_bytes(Image.fromarray(marked), "JPEG", exif=exif, quality=100))
    image = read_image(path)  # mmcv's 'color' flag is cv2.IMREAD_COLOR, which honours EXIF
    reference = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert image.shape == reference.shape == (40, 30, 3)
    assert np.abs(image.astype(int) - reference.astype(int)).max() <= 3
    assert image[:10, -10:].min() > 200 and image[:10, :10].max() < 50  # the corner went to the top right


def test_arrays_and_tensors_from_the_api_are_checked():
    assert as_rgb(RGB[:, :, 0]).shape == (30, 40, 3)
    assert np.array_equal(as_rgb(torch.from_numpy(RGB).permute(2, 0, 1)), RGB)
    for bad, message in (
        (np.zeros((0, 5, 3), np.uint8), "zero size"),
        (np.zeros((5, 5, 4), np.uint8), r"\(H, W, 3\)"),
        (torch.zeros(1, 3, 5, 5), r"\(3, H, W\)"),
        (torch.full((3, 4, 4), float("nan")), "NaN or Inf"),
        (np.full((4, 4, 3), np.inf, np.float32), "NaN or Inf"),
        ([1, 2, 3], "expected an image path"),
    ):
        with pytest.raises((ValueError, TypeError), match=message):
            as_rgb(bad)


def test_labels_read_as_mmsegmentation_reads_them(tmp_path):
    ids = np.random.default_rng(1).integers(0, 5, (12, 9)).astype(np.uint8)
    palette_png = Image.fromarray(ids, mode="P")
    palette_png.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0] + [0] * 753)
    palette_png.save(tmp_path / "voc.png")
    assert np.array_equal(read_label(tmp_path / "voc.png"), ids)  # palette indices, not colours
    cv2.imwrite(str(tmp_path / "deep.png"), ids.astype(np.uint16) * 100)
    deep = read_label(tmp_path / "deep.png")
    assert deep.dtype == np.uint16 and np.array_equal(deep, ids.astype(np.uint16) * 100)
    Image.fromarray(ids > 2).save(tmp_path / "mask.png")  # 1-bit PNG
    assert np.array_equal(read_label(tmp_path / "mask.png"), (ids > 2).astype(np.uint8))


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.png", b"", "is empty"),
        ("text.png", b"class ids go here", "cannot decode"),
        ("truncated.png", _encode(".png", RGB[:, :, 0])[:-40], "cannot decode"),
        ("colour.png", _encode(".png", RGB), "3 channels"),
        ("rgba.png", _encode(".png", np.dstack([RGB, RGB[:, :, :1]])), "4 channels"),
    ],
)
def test_unreadable_labels_name_the_file(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as err:
        read_label(path)
    assert str(path) in str(err.value)


def test_empty_dataset_folder_is_named(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "ann").mkdir()
    (tmp_path / "img" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match=f"no images ending in .jpg in {tmp_path / 'img'}"):
        SegDataset(tmp_path / "img", tmp_path / "ann", ["a"], [[0, 0, 0]])
