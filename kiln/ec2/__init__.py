"""EC2 on the AWS edge (kiln/aws): its model (``shapes``), its flavour of the Query protocol
(``protocol``), its service binding and dry runs (``server``), and the action handlers in
sibling modules named after their resource family, listed in one ACTIONS table (``actions``).
"""
