"""Parquet: the project's own contract files, Hugging Face exports, or any table with images.

`dataset.path` is one .parquet file, or a folder whose .parquet files (recursively, sorted,
hidden ones ignored) are read as one table. `dataset.image_column` may hold:
- encoded images: an HF `Image` struct {bytes, path} (a null `bytes` falls back to `path`),
  plain binary, or strings taken as image file paths; paths are relative to the file's folder
  (or to `dataset.path` when that is a folder);
- pixel arrays: list columns, nested (H, W[, C]) / (C, H, W), or flat (H*W or H*W*3, HWC order),
  with the same value rules as every array source (see `_common`).
`dataset.label_column` holds ints or strings. Class names for ints come from the HF `ClassLabel`
metadata of that column, else from a `label_name` column, else from the numbers themselves.
Unreadable or null encoded images follow `dataset.on_error`; null pixel lists are errors.
Rows count from 0 across all files, in sorted file order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import DatasetConfig
from pipeline.data.images import one_line, to_uint8
from pipeline.data.imageset import ImageSet
from pipeline.data.sources._common import (
    ImageDecoder,
    as_nhwc,
    check_declared_shape,
    describe_columns,
    encode_labels,
    pixel_scale,
    pixels_to_uint8,
    require_path,
    stack_images,
)
from pipeline.errors import PipelineError

NAME_COLUMN = "label_name"


def load_parquet(cfg: DatasetConfig) -> ImageSet:
    path = require_path(cfg.path, "dataset.path", folder=None)
    table = _read_tables(parquet_files(path), cfg)
    where = f"{path}: column {cfg.image_column!r}"
    column = table.column(cfg.image_column)
    if is_list(column.type):
        images, rows = pixel_lists(column, where, cfg), list(range(table.num_rows))
    else:
        base = path if path.is_dir() else path.parent
        images, rows = encoded_images(column, where, base, cfg)
    labels, class_names = _labels(table, rows, str(path), cfg.label_column)
    return ImageSet(images, labels, class_names)


def _labels(table: pa.Table, rows: list[int], path: str, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels of the kept `rows`, named by ClassLabel metadata or a label-name column if any."""
    values = table.column(column).to_pylist()
    names = _class_names(table.schema, column)
    integers = pa.types.is_integer(table.column(column).type)
    if names is None and integers and NAME_COLUMN in table.column_names:
        name_values = table.column(NAME_COLUMN).to_pylist()
        names = _names_from_column(values, name_values, f"{path}: column {NAME_COLUMN!r}")
    return encode_labels([values[row] for row in rows], f"{path}: column {column!r}", names, rows)


def parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(
        p for p in path.rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise PipelineError(f"dataset.path: {path} is a folder with no .parquet files")
    return files


def _read_tables(files: list[Path], cfg: DatasetConfig) -> pa.Table:
    """The wanted columns of all files as one table, keeping the first file's schema metadata."""
    tables = []
    for file in files:
        try:
            schema = pq.read_schema(file)
        except Exception as err:  # pyarrow reports corrupt files as ArrowInvalid, OSError, ...
            raise PipelineError(f"{file}: not a readable Parquet file ({one_line(err)})") from None
        wanted = {"dataset.image_column": cfg.image_column, "dataset.label_column": cfg.label_column}
        for param, name in wanted.items():
            if name not in schema.names:
                raise PipelineError(
                    f"{param}: no column {name!r} in {file} (columns: {describe_columns(schema.names)})"
                )
        columns = [name for name in dict.fromkeys([*wanted.values(), NAME_COLUMN]) if name in schema.names]
        _check_pixel_count(file, cfg)
        try:
            tables.append(pq.read_table(file, columns=columns))
        except Exception as err:
            raise PipelineError(f"{file}: not a readable Parquet file ({one_line(err)})") from None
    try:
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise PipelineError(f"dataset.path: the files in {files[0].parent} differ in schema") from None
    if table.num_rows == 0:
        raise PipelineError(f"{files[0]}: no rows")
    return table


def _check_pixel_count(file: Path, cfg: DatasetConfig) -> None:
    """Refuse pixel lists larger than the size limit allows on average, from the file's metadata:
    Parquet's run-length encoding lets a few KB hold billions of zeros, which reading would expand."""
    meta = pq.read_metadata(file)
    prefix = f"{cfg.image_column}."  # the leaf of a list column: image.list.element
    values = sum(
        group.column(j).num_values
        for group in (meta.row_group(i) for i in range(meta.num_row_groups))
        for j in range(group.num_columns)
        if group.column(j).path_in_schema.startswith(prefix)
    )
    most = meta.num_rows * cfg.max_image_pixels * 3  # every image RGB and as large as allowed
    if values > most:
        raise PipelineError(
            f"{file}: column {cfg.image_column!r} holds {values:,} pixel values in {meta.num_rows} rows, more "
            f"than dataset.max_image_pixels allows ({cfg.max_image_pixels:,} per image); refused before reading"
        )


def is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def encoded_images(
    column: pa.ChunkedArray, where: str, base: Path, cfg: DatasetConfig
) -> tuple[np.ndarray, list[int]]:
    kind = column.type
    if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
        sources = [_struct_source(item, base) for item in column.to_pylist()]
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        sources = column.to_pylist()
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        sources = [None if item is None else base / item for item in column.to_pylist()]
    else:
        raise PipelineError(
            f"dataset.image_column: {where} holds {kind}; expected encoded image bytes, an image "
            "struct {bytes, path}, image file paths or lists of pixel values"
        )
    decoder = ImageDecoder(cfg)
    images, names, rows = [], [], []
    for row, source in enumerate(sources):
        name = f"{where} row {row}" + (f" ({source})" if isinstance(source, Path) else "")
        image = decoder(source, name)
        if image is not None:
            images.append(image)
            names.append(name)
            rows.append(row)
    decoder.report()
    if not images:
        raise PipelineError(f"{where}: no readable image in any row")
    return stack_images(images, names, cfg), rows


def _struct_source(item: dict | None, base: Path) -> bytes | Path | None:
    if item is None:
        return None
    if item.get("bytes") is not None:
        return item["bytes"]
    return base / item["path"] if item.get("path") else None


def pixel_lists(column: pa.ChunkedArray, where: str, cfg: DatasetConfig) -> np.ndarray:
    """A list column of pixel values to (N, H, W, C) uint8; rows may differ in size."""
    values = column.combine_chunks()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise PipelineError(f"{where}: row {row} has no pixel values (null)")
    shape = [len(values)]
    while is_list(values.type):
        lengths = values.value_lengths()
        if lengths.null_count or len(set(lengths.to_pylist())) > 1:
            return _ragged_pixel_lists(column, where, cfg)
        shape.append(lengths[0].as_py() if len(lengths) else 0)
        values = values.flatten()
    kind = values.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise PipelineError(f"{where}: pixel lists hold {values.type}, not numbers")
    check_declared_shape(tuple(shape), where, cfg)
    flat = values.to_numpy(zero_copy_only=False)  # nulls inside become NaN, caught as such
    return pixels_to_uint8(as_nhwc(flat.reshape(shape), where), where)


def _ragged_pixel_lists(column: pa.ChunkedArray, where: str, cfg: DatasetConfig) -> np.ndarray:
    images = []
    for row, item in enumerate(column.to_pylist()):
        try:
            array = np.asarray(item, dtype=np.float64)
        except (ValueError, TypeError):
            raise PipelineError(f"{where}: row {row} is not a rectangular array of numbers") from None
        check_declared_shape(array[None].shape, f"{where} row {row}", cfg)
        images.append(as_nhwc(array[None], f"{where} row {row}")[0])
    scale = pixel_scale(images, where)
    names = [f"{where} row {row}" for row in range(len(images))]
    return stack_images([to_uint8(image, scale) for image in images], names, cfg)


def _class_names(schema: pa.Schema, column: str) -> dict[int, str] | None:
    """Names from the Hugging Face `ClassLabel` feature of `column`, if the file has one."""
    try:
        features = json.loads((schema.metadata or {})[b"huggingface"])["info"]["features"]
        feature = features[column]
        if feature.get("_type") == "ClassLabel" and isinstance(feature.get("names"), list):
            return {i: str(name) for i, name in enumerate(feature["names"])}
    except (KeyError, TypeError, AttributeError, ValueError):
        pass
    return None


def _names_from_column(labels: list, names: list, where: str) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for row, (label, name) in enumerate(zip(labels, names)):
        if label is None or name is None:
            continue
        if mapping.setdefault(label, str(name)) != str(name):
            raise PipelineError(
                f"{where}: label {label} is named {mapping[label]!r} and, in row {row}, {name!r}"
            )
    for label in labels:  # a label with no name anywhere is named by its number
        if label is not None:
            mapping.setdefault(label, str(label))
    return mapping
