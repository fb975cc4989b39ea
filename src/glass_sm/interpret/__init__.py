"""Interpretation of trained models: attention by lag, permutation importance."""
