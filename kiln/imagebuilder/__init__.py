"""EC2 Image Builder on the AWS edge (rest-json; docs/imagebuilder.md)."""
