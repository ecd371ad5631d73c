"""Offline compliance scans of images (docs/scan.md): ScanImage (``kiln scan``), EC2's
GetImageFindings, and the sharing policy that refuses a public share of an image with a
critical finding."""
