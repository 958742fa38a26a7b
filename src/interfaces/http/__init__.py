"""Chronicle http layer."""
