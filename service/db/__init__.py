"""Database access: engine creation, models registry, migrations."""
