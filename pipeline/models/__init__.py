"""Plain torch networks (`cvae`, `classifier`) and their Lightning wrappers (`lit_*`)."""
