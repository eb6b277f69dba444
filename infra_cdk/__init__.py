"""The CDK app: constructs per concern, built from the shared route-group registry."""
