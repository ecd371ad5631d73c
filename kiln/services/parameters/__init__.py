"""SSM Parameter Store rules: account parameters, public parameters, resolve:ssm."""
