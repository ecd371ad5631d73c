"""Lifecycle policies: Image Builder's rules for images (docs/lifecycle.md)."""
