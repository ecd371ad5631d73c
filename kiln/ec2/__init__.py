"""The EC2 HTTP edge: Query protocol (``protocol``), SigV4 (``sigv4``), the app (``server``).

Modules, bottom up: ``shapes`` (botocore's model and its naming rules) -> ``protocol`` (form ->
params, result -> XML) and ``sigv4`` -> ``server`` (``build_ec2_app``). Action handlers live in
sibling modules named after their resource family and are listed in one ACTIONS table.
"""
