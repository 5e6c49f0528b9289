"""Reproducible generative data augmentation: does a class-conditional VAE help my classifier?

Importing the package pins torch's CPU kernels (`kernels.py`) before anything computes, so every
stage, tool and worker process makes the same bits on any x86-64 CPU unless told otherwise.
"""

from pipeline import kernels

kernels.pin()
