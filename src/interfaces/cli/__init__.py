"""Chronicle cli layer."""
