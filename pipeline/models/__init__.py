"""Networks, their Lightning modules, fitting/saving/loading the VAE, sampling it, fitting classifiers."""
