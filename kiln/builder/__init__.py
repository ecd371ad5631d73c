"""Image Builder's documents (components, recipes, distributions) and what they become in a
guest: shell commands run over SSH (docs/builds.md). Imports nothing but kiln.errors."""
