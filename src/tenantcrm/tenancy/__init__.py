"""Tenants: the registry, provisioning, and the one tenant unit of work."""
