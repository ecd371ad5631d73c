"""VPCs, subnets and security groups: the rules (docs/networks.md)."""
