"""`python -m pipeline.bench`: the pipeline's speed and memory on this machine.

measure (peak RSS of a command or a child), training (Lightning vs a plain loop), generation,
dag (every dvc.yaml stage), mnist (MNIST-sized data), render (tables); `__main__` wires them.
"""
