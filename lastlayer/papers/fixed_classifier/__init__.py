"""The paper `fixed_classifier`."""
