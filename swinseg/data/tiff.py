"""TIFF and BigTIFF images too large to read whole: rows read band by band from the tiles or
strips that hold them (``tifffile``), label maps written tile by tile, georeferencing kept."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GEO_TAGS", "TiffReader", "tiff_size", "write_tiled"]

# GeoTIFF and GDAL tags: pixel scale, tie points, transformation, GeoKey directory, double and
# ASCII parameters, GDAL metadata and nodata. Copied to outputs so that they line up in GIS tools.
GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)


def tiff_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(height, width) of a TIFF/BigTIFF file's first image from its header alone (no decoding, no
    tifffile: deciding whether a scene must be streamed needs only this); None if it is not a
    TIFF or its header is damaged (the image reader then says why)."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(16)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None or len(head) < 16:
                return None
            magic = struct.unpack(order + "H", head[2:4])[0]
            big = magic == 43
            if magic not in (42, 43):
                return None
            f.seek(struct.unpack(order + ("Q", "I")[not big], head[8:16] if big else head[4:8])[0])
            count = struct.unpack(order + ("Q", "H")[not big], f.read(8 if big else 2))[0]
            entry, value_size = (20, 8) if big else (12, 4)
            entries = f.read(entry * min(count, 4096))
    except (OSError, struct.error):
        return None
    size: dict[int, int] = {}
    for i in range(0, len(entries) - entry + 1, entry):
        tag, kind = struct.unpack(order + "HH", entries[i : i + 4])
        if tag in (256, 257) and kind in (3, 4, 16):
            raw = entries[i + entry - value_size : i + entry]
            size[tag] = struct.unpack(order + {3: "H", 4: "I", 16: "Q"}[kind], raw[: {3: 2, 4: 4, 16: 8}[kind]])[0]
    return (size[257], size[256]) if len(size) == 2 else None


def _tifffile() -> Any:
    try:
        import tifffile
    except ImportError:
        raise ImportError("TIFF scenes streamed at native resolution need tifffile: pip install 'swinseg[tiff]'") from None
    return tifffile


class TiffReader:
    """The first image of a TIFF/BigTIFF file, read by bands of rows as (rows, width, 3) uint8 RGB
    (grey replicated, alpha dropped, 16-bit reduced to its high byte, as :func:`read_image` does).
    Only the tiles or strips a band needs are read and decoded."""

    def __init__(self, path: str | os.PathLike) -> None:
        tifffile = _tifffile()
        self.path = Path(path)
        try:
            self._file = tifffile.TiffFile(self.path)
            self._page = self._file.pages.first
        except (tifffile.TiffFileError, ValueError, IndexError) as e:
            raise ValueError(f"cannot read {self.path} as TIFF: {e}") from None
        page = self._page
        if page.planarconfig == 2 and page.samplesperpixel > 1:
            raise ValueError(f"{self.path}: planar (separate) samples are not supported; save it with contiguous samples")
        if page.dtype not in (np.uint8, np.uint16) or page.samplesperpixel not in (1, 3, 4):
            raise ValueError(
                f"{self.path}: {page.samplesperpixel} sample(s) of {page.dtype} per pixel; expected 8 or 16-bit grey, RGB or RGBA"
            )
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        self.bigtiff = self._file.is_bigtiff
        self._rows = int(page.tilelength if page.is_tiled else page.rowsperstrip or self.height)
        self._across = -(-self.width // int(page.tilewidth)) if page.is_tiled else 1

    def __enter__(self) -> TiffReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def geo_tags(self) -> list[tuple[int, int, int, Any, bool]]:
        """The georeferencing tags of the file as ``tifffile`` ``extratags``."""
        return [(t.code, t.dtype, t.count, t.value, True) for t in self._page.tags.values() if t.code in GEO_TAGS]

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows ``top:bottom`` of the image, (bottom - top, width, 3) uint8 RGB."""
        page, fh = self._page, self._file.filehandle
        band = np.zeros((bottom - top, self.width, page.samplesperpixel), page.dtype)
        for row in range(top // self._rows, -(-bottom // self._rows)):
            for index in range(row * self._across, (row + 1) * self._across):
                offset, count = page.dataoffsets[index], page.databytecounts[index]
                data = None
                if count:
                    fh.seek(offset)
                    data = fh.read(count)
                segment, (_, _, y, x, _), _ = page.decode(data, index, jpegtables=page.jpegtables)
                if segment is None:
                    continue
                segment = segment[0, : self.height - y, : self.width - x]
                lo, hi = max(top, y), min(bottom, y + segment.shape[0])
                if lo < hi:
                    band[lo - top : hi - top, x : x + segment.shape[1]] = segment[lo - y : hi - y]
        if band.dtype == np.uint16:
            band = (band >> 8).astype(np.uint8)
        if band.shape[2] == 1:
            return np.repeat(band, 3, axis=2)
        return np.ascontiguousarray(band[:, :, :3])


def write_tiled(
    path: str | os.PathLike,
    tiles: Iterator[np.ndarray],
    shape: tuple[int, int],
    dtype: np.dtype,
    tile: int,
    extratags: list[tuple[int, int, int, Any, bool]] | None = None,
    bigtiff: bool = False,
) -> None:
    """Write a one-channel image as a zlib-compressed tiled TIFF (BigTIFF when ``bigtiff`` or
    when over 2 GB), from its ``tile`` x ``tile`` tiles in row-major order, without holding it."""
    tifffile = _tifffile()
    big = bigtiff or shape[0] * shape[1] * np.dtype(dtype).itemsize > 2**31
    tifffile.imwrite(
        path,
        tiles,
        shape=shape,
        dtype=dtype,
        tile=(tile, tile),
        compression="zlib",
        bigtiff=big,
        extratags=extratags or [],
        photometric="minisblack",
    )
