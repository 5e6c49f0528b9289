"""Reproducible generative data augmentation: does a class-conditional VAE help my classifier?"""
