"""Data sets: built-in 2-D sets, arrays and images."""
