"""Image rules: register, deregister, describe, attributes, create, copy; access and the state table."""
