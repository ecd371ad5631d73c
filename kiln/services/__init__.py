"""The rules: who may see / change what, state machines, filters, jobs. One function per EC2
action, named after it, in a package per resource family (images/, snapshots/ with volumes,
instances/, keys/, tasks/, tags/, accounts/). No HTTP and no SQL text here: storage goes through
kiln.catalog; threads, queues, host paths and downloads are kiln.runtime's."""
