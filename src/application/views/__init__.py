"""Chronicle views layer."""
