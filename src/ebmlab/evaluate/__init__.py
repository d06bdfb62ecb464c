"""Evaluation: normalising constants, sample quality, chain diagnostics."""
