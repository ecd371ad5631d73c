"""Host networking for instances: one isolated network per VPC (kiln/compute/network/types.py)."""
