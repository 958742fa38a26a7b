"""Chronicle infrastructure layer."""
