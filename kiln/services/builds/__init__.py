"""Image builds (``kiln build``; docs/builds.md): a recipe's components run over SSH on a real
instance of the parent, the image made from it, tested on a new instance, distributed."""
