"""Accounts and access keys."""
