"""Exports: the use cases (`service`), the exporters and their registry, and the exports read
model's projection (`view`)."""
