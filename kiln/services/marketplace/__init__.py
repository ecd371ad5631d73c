"""Marketplace: vendors' products, buyers' subscriptions and metered usage (docs/marketplace.md)."""
