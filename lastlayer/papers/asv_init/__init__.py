"""The paper `asv_init`."""
