"""Customers: the borrowers and enterprises an institution serves."""
