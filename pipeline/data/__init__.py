"""Data in: dataset sources, the Parquet contract, ImageSet, splits, pixels and augmentation."""
