"""Key rules: key pairs (EC2) and the KMS keys that seal snapshots."""
