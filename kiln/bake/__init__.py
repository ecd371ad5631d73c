"""Base images baked from Debian packages (docs/bake.md)."""
