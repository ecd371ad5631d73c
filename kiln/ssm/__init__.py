"""SSM Parameter Store over JSON 1.1."""
