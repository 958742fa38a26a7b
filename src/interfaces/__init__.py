"""Chronicle interfaces layer."""
