"""Build runner: turn a product spec and its inputs into a release."""
