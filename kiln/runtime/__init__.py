"""What the rules run on: the job queue, the instance runtime and its locks, the host disk
layout (the one place that spells the data dir), volume disks and guarded downloads.

Imports kiln.catalog, kiln.store, kiln.disks and kiln.compute, never kiln.services."""
