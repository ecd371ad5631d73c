"""Recycle Bin: retention rules (the rbin API) and the images they keep (docs/recycle-bin.md)."""
