"""Hypervisor drivers, the accelerator probe, NoCloud seeds, host ports (docs/compute.md)."""
