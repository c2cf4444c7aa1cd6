"""Lets pytest import the bench package from the repository root."""
