"""Auditing real labeled images with the trained class-conditional VAE.

A VAE that models each class is also a detector: an image it explains much better under another
label may be mislabelled; one it explains badly under every label is an outlier. `scores` computes
how well the VAE explains each image under every label, `ranking` turns that into margins, outlier
scores, flags and a rank, `table` writes them under the Parquet contract; `faults` and `detection`
inject known faults and measure how well they are found (the benchmark and the tests).
"""
