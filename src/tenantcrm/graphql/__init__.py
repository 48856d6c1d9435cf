"""The GraphQL API: schema assembly, request context, limits and per-capability types."""
