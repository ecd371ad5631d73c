"""S3 buckets and their objects: the rules behind kiln/s3 (docs/s3.md)."""
