"""The `lake` command line."""
