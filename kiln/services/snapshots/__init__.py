"""Snapshot and volume rules: describe, delete, attributes, copy; volumes; CreateSnapshot of a volume."""
