"""Command-line helpers around the pipeline: summarize a dataset file, compare two runs."""
