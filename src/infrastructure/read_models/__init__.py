"""The SQL read models: the generic projection-store machinery (`store`) and one module per
feature with its tables, writers and queries."""
