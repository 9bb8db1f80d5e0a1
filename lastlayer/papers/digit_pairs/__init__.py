"""The paper `digit_pairs`."""
