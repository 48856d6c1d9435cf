"""Segments: saved filter trees over customers, counted, listed, broken down and exported."""
