"""Contacts with customers: logged interactions, follow-ups and visit plans, and "my day"."""
