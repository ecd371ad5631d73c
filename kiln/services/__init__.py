"""The rules: who may see / change what, state machines, filters, jobs. One function per EC2
action, named after it. No HTTP and no SQL text here: storage goes through kiln.catalog."""
