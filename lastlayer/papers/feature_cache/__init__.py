"""The paper `feature_cache`."""
