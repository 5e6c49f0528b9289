"""CSV: one row per image, a header row, `dataset.label_column` and one column per pixel.

Every other numeric column is a pixel, in file order (Kaggle MNIST's `label,pixel0..pixel783`);
columns of text (file names, notes) are ignored. A row of side*side values is a grey image,
side*side*3 an RGB one in HWC order (r, g, b of the first pixel, then the next pixel). Pixel
values follow the shared rules (see `_common`): 0..255, or floats in 0..1 scaled by 255. Labels
are integers or class names. Rows count from 0, the header not included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import DatasetConfig
from pipeline.data.images import one_line
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import as_nhwc, describe_columns, encode_labels, pixels_to_uint8, require_path
from pipeline.errors import PipelineError


def load_csv(cfg: DatasetConfig) -> ImageSet:
    path = require_path(cfg.path, "dataset.path")
    try:
        frame = pd.read_csv(path)
    except Exception as err:  # pandas reports bad files as ParserError, UnicodeDecodeError, ...
        raise PipelineError(f"{path}: not a readable CSV file ({one_line(err)})") from None
    columns = [str(name) for name in frame.columns]
    frame.columns = columns
    if cfg.label_column not in columns:
        hint = "; the first line looks like data: add a header row" if _all_numbers(columns) else ""
        raise PipelineError(
            f"dataset.label_column: no column {cfg.label_column!r} in {path} "
            f"(columns: {describe_columns(columns)}){hint}"
        )
    if frame.empty:
        raise PipelineError(f"{path}: no rows")
    pixel_columns = _pixel_columns(frame, cfg.label_column, str(path))
    integers = all(pd.api.types.is_integer_dtype(frame[name]) for name in pixel_columns)
    pixels = frame[pixel_columns].to_numpy(dtype=np.int64 if integers else np.float64)
    bad = ~np.isfinite(pixels)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PipelineError(f"{path}: column {pixel_columns[col]!r} row {row} is empty, NaN or infinite")
    where = f"{path} (numeric columns besides {cfg.label_column!r})"
    images = pixels_to_uint8(as_nhwc(pixels, where), str(path))
    label_where = f"{path}: column {cfg.label_column!r}"
    labels, class_names = encode_labels(frame[cfg.label_column].tolist(), label_where)
    return ImageSet(images, labels, class_names)


def _pixel_columns(frame: pd.DataFrame, label_column: str, where: str) -> list[str]:
    """Numeric columns other than the label; a text column with some numbers in it is an error."""
    pixels = []
    for name in frame.columns:
        if name == label_column:
            continue
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            pixels.append(name)
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().any():
            row = int(np.flatnonzero(numbers.isna() & column.notna())[0])
            value = column.iloc[row]
            raise PipelineError(f"{where}: column {name!r} row {row} holds {value!r}, not a number")
    if not pixels:
        raise PipelineError(f"{where}: no numeric pixel columns besides {label_column!r}")
    return pixels


def _all_numbers(names: list[str]) -> bool:
    try:
        [float(name) for name in names]
    except ValueError:
        return False
    return True
