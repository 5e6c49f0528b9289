"""The five DVC stages, one thin entry point each: parse paths, load params, call the library, write outputs."""
