"""Is augmentation worth it: arms, learning-curve cells, selection on val, intervals, sample quality."""
