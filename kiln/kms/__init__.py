"""KMS over the AWS JSON 1.1 protocol: the per-account keys EC2 encrypts with. See docs/kms.md."""
