"""Offline compliance scans of a disk's filesystem, read straight from the store
(docs/scan.md). ``scan_disk(disk, policy)`` takes anything with ``read(offset, length)`` and
``size`` (a ``SnapshotReader``; ``FileDisk`` for a raw file), reads the partition table and the
ext4 root filesystem through the PyPI ``ext4`` library, and runs the checks of
``kiln/scan/checks.py``. It never mounts, never restores the disk, and imports no rules."""
