"""Auditing real labeled images with class-conditional VAEs that never trained on them.

A VAE that models each class is also a detector: an image it explains much better under another
label may be mislabelled; one it explains badly under every label is an outlier. `crossfit` trains
one VAE per fold and scores the fold it left out, `scores` computes how well a VAE explains each
image under every label, `ranking` turns the out-of-fold bounds into calibrated flags, margins,
outlier scores and ranks, `table` writes them under the Parquet contract; `faults` and `detection`
inject known faults and measure how well they are found (the benchmark and the tests).
"""
