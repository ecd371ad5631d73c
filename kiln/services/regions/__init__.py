"""Regions, availability zones and the account's attributes (DescribeRegions,
DescribeAvailabilityZones, DescribeAccountAttributes); docs/regions.md."""
