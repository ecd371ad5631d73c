"""Kiln: a self-hosted machine image service speaking the EC2 API."""

__version__ = "0.1.0"
