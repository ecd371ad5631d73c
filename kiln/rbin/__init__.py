"""The Recycle Bin API (rbin, REST-JSON): retention rules (docs/recycle-bin.md)."""
