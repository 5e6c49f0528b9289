"""Shared by every test folder."""

# Pins torch's CPU kernels (pipeline/kernels.py) before any test computes, as the stages do.
import pipeline  # noqa: F401
