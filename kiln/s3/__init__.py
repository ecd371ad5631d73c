"""S3 over the rest-xml protocol, path-style, on the AWS endpoint: buckets and objects.
See docs/s3.md."""
