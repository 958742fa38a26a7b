"""Chronicle domain layer."""
