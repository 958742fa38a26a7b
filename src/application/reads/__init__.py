"""One query per resource, as of at least a given write: what HTTP, the CLI and the dashboard
read."""
