"""The shared image reader on real photos: EXIF orientation as phones write it, damaged files without noise."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

from emolens.cli import main
from emolens.evaluation.evaluate import evaluate_folder
from emolens.images import apply_orientation, exif_orientation, read_image

from .test_cli import emolens

# PIL's transpose that stores an upright photo the way a camera does for each EXIF orientation
# (the viewer applies the inverse, ImageOps.exif_transpose).
STORED_AS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def phone_photo(path, upright_bgr: np.ndarray, orientation: int):
    """Write ``upright_bgr`` as a phone does: pixels stored turned, the EXIF Orientation tag saying how to turn back."""
    stored = Image.fromarray(upright_bgr[:, :, ::-1]).transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, quality=95, exif=exif.tobytes())
    return path


def iou(a, b) -> float:
    top_left, bottom_right = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_rotated_phone_photo_is_read_upright(tmp_path, astronaut, orientation):
    path = phone_photo(tmp_path / "phone.jpg", astronaut, orientation)
    assert exif_orientation(path.read_bytes()) == orientation
    image = read_image(path)
    assert image.shape == astronaut.shape
    assert np.abs(image.astype(int) - astronaut).mean() < 3  # JPEG noise only


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation):
    pixels = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    tagged = Image.fromarray(pixels)
    tagged.getexif()[0x0112] = orientation
    assert np.array_equal(apply_orientation(pixels, orientation), np.asarray(ImageOps.exif_transpose(tagged)))


def test_analyze_finds_the_face_of_a_rotated_phone_photo_where_it_is(tmp_path, astronaut, analyzer):
    """Before: the face was searched in the sideways pixels, so its box and its emotion were wrong."""
    upright = analyzer.analyze(astronaut)
    path = phone_photo(tmp_path / "phone.jpg", astronaut, 6)
    result = emolens("analyze", path, "-o", tmp_path / "t.csv")
    assert result.returncode == 0, result.stderr
    row = pd.read_csv(tmp_path / "t.csv").iloc[0]
    box = np.array([row.x, row.y, row.x + row.w, row.y + row.h])
    assert iou(box, upright.xyxy[0]) > 0.8
    assert row.dominant == analyzer.labels[int(upright.probs[0].argmax())]


def test_evaluate_reads_phone_photos_upright(tmp_path, astronaut, analyzer):
    expected = analyzer.labels[int(analyzer.analyze(astronaut).probs[0].argmax())]
    (tmp_path / expected).mkdir()
    for orientation in STORED_AS:
        phone_photo(tmp_path / expected / f"{orientation}.jpg", astronaut, orientation)
    report = evaluate_folder(tmp_path)
    assert report["no_face"] == 0 and report["accuracy"] == 1.0


def test_damaged_images_give_no_native_noise(tmp_path, astronaut):
    """libpng printed 'libpng error: PNG input buffer is incomplete' beside our lines."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut[:, :, ::-1]).save(folder / "good.png")
    (folder / "cut.png").write_bytes((folder / "good.png").read_bytes()[:5000])
    result = emolens("analyze", folder, "-o", tmp_path / "t.csv")
    assert result.returncode == 3, result.stderr  # done, one image skipped
    assert f"skipped 1 unreadable image(s) ({folder / 'cut.png'})" in result.stderr
    assert all(not line.startswith("libpng") for line in result.stderr.splitlines()), result.stderr
    result = emolens("analyze", folder / "cut.png", "-o", tmp_path / "u.csv")
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"emolens: error: cannot read image {folder / 'cut.png'}: not an image, corrupt, or over 179 megapixels"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def black_png(width: int, height: int) -> bytes:
    """A real gray PNG of ``width`` x ``height`` black pixels, compressed row by row (20000x20000: about 400 kB)."""
    compressor, row = zlib.compressobj(9), bytes(width + 1)  # filter byte 0, then the row
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")


def declaring(png: bytes, width: int, height: int) -> bytes:
    """``png`` with its header declaring another size (the CRC made right, so readers believe it)."""
    header = struct.pack(">II", width, height) + png[24:29]
    return png[:8] + png_chunk(b"IHDR", header) + png[33:]


def test_image_bombs_are_skipped_before_decoding(tmp_path, astronaut, capsys):
    """Before: the 20000x20000 PNG decoded to gigabytes then a traceback; the 60000x60000 one an OpenCV traceback."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut[:, :, ::-1]).save(folder / "a.png")
    (folder / "b.png").write_bytes(black_png(20_000, 20_000))
    (folder / "c.png").write_bytes(declaring((folder / "a.png").read_bytes(), 60_000, 60_000))
    bomb = (folder / "b.png").read_bytes()
    assert len(bomb) < 2_000_000 and struct.unpack(">II", bomb[16:24]) == (20_000, 20_000)
    result = emolens("analyze", folder, "-o", tmp_path / "t.csv")
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    assert (f"skipped 2 unreadable image(s) ({folder / 'b.png'}, {folder / 'c.png'}): not images, corrupt, or over "
            f"179 megapixels") in result.stderr
    assert pd.read_csv(tmp_path / "t.csv")["source"].tolist() == [str(folder / "a.png")]
    for bomb in ("b.png", "c.png"):
        assert main(["analyze", str(folder / bomb), "-o", str(tmp_path / f"{bomb}.csv")]) == 1
        assert capsys.readouterr().err.strip().splitlines() == [
            f"emolens: error: cannot read image {folder / bomb}: not an image, corrupt, or over 179 megapixels"]
        assert not (tmp_path / f"{bomb}.csv").exists()
