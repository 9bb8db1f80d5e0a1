"""The paper `geometry`."""
