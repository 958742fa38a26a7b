"""CSV imports: the use cases (`service`), the importers and their registry, the streaming CSV
reader and the imports read model's projection (`view`)."""
