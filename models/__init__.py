"""Model registry: one TOML manifest per model (installed as livi_cli.registry)."""
