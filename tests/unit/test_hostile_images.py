"""Hostile images: a decompression bomb or a 100000x1 strip is refused from its header, in one line
naming the file (and row), before its pixels take memory; `dataset.on_error: skip` leaves it out."""

from __future__ import annotations

import gzip
import io
import logging
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageFile

from pipeline.config import DatasetConfig
from pipeline.data.images import SizeLimits, decode_image
from pipeline.data.sources import load_dataset
from pipeline.data.sources._common import stack_images
from pipeline.errors import EXIT_USER_ERROR, PipelineError
from pipeline.stages import preprocess
from tests import datagen as dg

NAMES = dg.class_names(3)
BOMB_SIDE = 20_000  # 400 megapixels: 400 MB as PIL's 1-bit image, 400 MB more as an array


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A valid 1-bit BOMB_SIDE x BOMB_SIDE all-black PNG, compressed row by row (never held whole)."""
    row = b"\x00" * (1 + BOMB_SIDE // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(BOMB_SIDE)) + packer.flush()
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 1, 0, 0, 0, 0)  # bit depth 1, grey
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def strip() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (100_000, 1), 128).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def no_big_decodes(monkeypatch):
    """Make decoding any image over a megapixel fail the test: the check must come first."""
    load = ImageFile.ImageFile.load

    def guarded(self):
        assert self.width * self.height <= 1_000_000, f"decoded a {self.width}x{self.height} image"
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", guarded)


def load(**params):
    return load_dataset(DatasetConfig(**params))


def error(**params) -> str:
    with pytest.raises(PipelineError) as caught:
        load(**params)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def folder_with(tmp_path: Path, bad: dict[str, bytes]) -> Path:
    """The standard generated folder plus `bad` files (name -> bytes) in the second class."""
    root = dg.make_image_folder(tmp_path / "images")
    for name, data in bad.items():
        (root / NAMES[1] / name).write_bytes(data)
    return root


def test_the_bomb_is_a_small_file_declaring_400_megapixels(bomb, monkeypatch):
    assert len(bomb) < 200_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # open reads the header only
    with Image.open(io.BytesIO(bomb)) as img:
        assert img.size == (BOMB_SIDE, BOMB_SIDE)


@pytest.mark.parametrize(
    ("bad", "words"),
    [("bomb", ["20000x20000", "400,000,000 pixels", "dataset.max_image_pixels"]),
     ("strip", ["100000x1", "aspect ratio", "dataset.max_aspect_ratio"])],
)
def test_image_folder_refuses_from_the_header(tmp_path, bomb, no_big_decodes, bad, words):
    root = folder_with(tmp_path, {"zz.png": bomb if bad == "bomb" else strip()})
    message = error(source="image_folder", path=str(root))
    assert str(root / NAMES[1] / "zz.png") in message and "dataset.on_error: skip" in message
    assert all(word in message for word in words)


def test_image_folder_skip_leaves_them_out_and_counts_them(tmp_path, bomb, no_big_decodes, caplog):
    root = folder_with(tmp_path, {"zz_bomb.png": bomb, "zz_strip.png": strip()})
    with caplog.at_level(logging.WARNING, logger="pipeline.data.sources"):
        data = load(source="image_folder", path=str(root), on_error="skip")
    images, labels = dg.make_images()
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    lines = [record.getMessage() for record in caplog.records]
    assert any("zz_bomb.png" in line and "20000x20000" in line for line in lines)
    assert any("zz_strip.png" in line and "100000x1" in line for line in lines)
    assert any("skipped 2" in line for line in lines)


def test_parquet_names_file_column_and_row_or_skips(tmp_path, bomb, no_big_decodes):
    images, labels = dg.make_images()
    blobs = [dg.encode(image) for image in images]
    blobs[5], blobs[9] = bomb, strip()
    path = tmp_path / "hostile.parquet"
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary()), "label": labels}), path)
    message = error(source="parquet", path=str(path))
    assert str(path) in message and "'image'" in message and "row 5" in message and "20000x20000" in message
    data = load(source="parquet", path=str(path), on_error="skip")
    np.testing.assert_array_equal(data.images, np.delete(images, [5, 9], axis=0))
    np.testing.assert_array_equal(data.labels, np.delete(labels, [5, 9]))


def test_preprocess_cli_prints_one_error_line_and_exits_2(tmp_path, bomb, capsys):
    root = folder_with(tmp_path, {"zz.png": bomb})
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"dataset": {"source": "image_folder", "path": str(root)}}))
    out_dir = tmp_path / "processed"
    with pytest.raises(SystemExit) as stopped:
        preprocess.main(["--params", str(params), "--out-dir", str(out_dir), "--summary", str(tmp_path / "d.json")])
    assert stopped.value.code == EXIT_USER_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(root / NAMES[1] / "zz.png") in lines[0]
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_the_param_sets_the_limit_not_pils_global(tmp_path, monkeypatch):
    root = dg.make_image_folder(tmp_path, per_class=2)  # 28x28 images
    assert len(load(source="image_folder", path=str(root), max_image_pixels=28 * 28).images) == 6
    assert "784 pixels, over the limit of 783" in error(source="image_folder", path=str(root), max_image_pixels=783)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # someone else's global: neither used nor changed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load(source="image_folder", path=str(root)).images) == 6
    assert Image.MAX_IMAGE_PIXELS == 100


def test_other_formats_behind_an_image_suffix_are_not_parsed(tmp_path):
    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, format="ICO")  # ICO holds embedded images of any size
    root = folder_with(tmp_path, {"icon.png": buffer.getvalue()})
    message = error(source="image_folder", path=str(root))
    assert "icon.png" in message and "not a PNG, JPEG" in message


def test_config_defaults_are_the_library_defaults():
    cfg, limits = DatasetConfig(), SizeLimits()
    assert (cfg.max_image_pixels, cfg.max_aspect_ratio) == (limits.max_pixels, limits.max_aspect)


@pytest.mark.slow  # a fresh interpreter: about 2 s of CPU for the imports
def test_loading_a_folder_with_a_bomb_costs_no_memory(tmp_path, bomb):
    """Peak RSS of a fresh process: decoding the bomb would add about 1.5 GB (measured)."""
    clean = dg.make_image_folder(tmp_path / "clean")
    root = folder_with(tmp_path, {"zz.png": bomb})
    script = (
        "import resource, sys\n"
        "from pipeline.config import DatasetConfig\n"
        "from pipeline.data.sources import load_dataset\n"
        "def load(path):\n"
        "    return load_dataset(DatasetConfig(source='image_folder', path=path, on_error='skip'))\n"
        "load(sys.argv[1])\n"  # warm up on a clean folder: every import and buffer a load needs
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "data = load(sys.argv[2])\n"
        "print(len(data.images), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    command = [sys.executable, "-c", script, str(clean), str(root)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    kept, grown_kb = map(int, out.stdout.split())
    assert kept == 36 and grown_kb < 50_000


# --- arrays: the declared shape is checked before the values are read --------------------


def npz_declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose `x` header declares `shape` (its values cut short) and whose `y` is fine."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(shape[0], np.int64))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
        archive.writestr("y.npy", labels.getvalue())
    return path


def idx_declaring(path: Path, dims: tuple[int, ...], values: bytes = b"") -> Path:
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(header + values))
    return path


@pytest.mark.parametrize(("shape", "words"), [((1, BOMB_SIDE, BOMB_SIDE), "20000x20000 is"), ((2, 1, 100_000), "aspect ratio")])
def test_npz_and_idx_refuse_image_shapes_from_their_headers(tmp_path, shape, words):
    npz = npz_declaring(tmp_path / "x.npz", shape)
    message = error(source="npz", path=str(npz))
    assert str(npz) in message and "'x'" in message and words in message
    labels = dg.make_idx(tmp_path / "labels", gzip=True)[1]
    images = idx_declaring(tmp_path / "images.gz", shape)
    message = error(source="idx", path=str(images), labels_path=str(labels))
    assert str(images) in message and words in message


def test_gzipped_idx_is_never_decompressed_past_its_header(tmp_path):
    labels = dg.make_idx(tmp_path / "labels", gzip=True)[1]
    huge = idx_declaring(tmp_path / "huge.gz", (4_000_000_000, 28, 28))  # more than gzip can expand to
    assert "at most" in error(source="idx", path=str(huge), labels_path=str(labels))
    tail = idx_declaring(tmp_path / "tail.gz", (36, 28, 28), bytes(36 * 28 * 28 + 5_000_000))
    assert "more bytes" in error(source="idx", path=str(tail), labels_path=str(labels))


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_resizing_as_decoded_gives_the_pixels_of_resizing_at_the_end(tmp_path, channels):
    """The decoder shrinks each image at once (memory); the result equals converting and resizing
    the whole stack afterwards, grey and colour images of different sizes mixed."""
    root = dg.make_image_folder(tmp_path / "images", per_class=2, size=40)
    dg.save_image(dg.make_images(per_class=1, size=30, channels=3, seed=1)[0][1], root / NAMES[1] / "colour.png")
    cfg = DatasetConfig(source="image_folder", path=str(root), image_size=16, channels=channels)
    files = sorted(root.rglob("*.png"))
    full = [decode_image(file) for file in files]
    expected = stack_images(full, [str(file) for file in files], cfg)
    np.testing.assert_array_equal(load_dataset(cfg).images, expected)


def test_parquet_pixel_lists_are_checked_before_they_are_converted(tmp_path):
    strip_rows = tmp_path / "strip.parquet"
    pq.write_table(pa.table({"image": [[[0] * 2000], [[9] * 2000]], "label": [0, 1]}), strip_rows)
    assert "2000x1 has aspect ratio" in error(source="parquet", path=str(strip_rows))
    ragged = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"image": [[[0] * 8] * 8, [[0] * 2000]], "label": [0, 1]}), ragged)
    message = error(source="parquet", path=str(ragged))
    assert "row 1" in message and "2000x1" in message
    counted = tmp_path / "counted.parquet"
    pq.write_table(pa.table({"image": [[[0] * 8] * 8] * 2, "label": [0, 1]}), counted)
    message = error(source="parquet", path=str(counted), max_image_pixels=10)
    assert str(counted) in message and "128 pixel values in 2 rows" in message and "before reading" in message
