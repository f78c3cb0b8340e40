"""Bytes or a reference in, a pandas DataFrame out: formats, limits, cleanup."""
