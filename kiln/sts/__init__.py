"""STS over the AWS Query protocol: who am I (``GetCallerIdentity``). See docs/sts.md."""
