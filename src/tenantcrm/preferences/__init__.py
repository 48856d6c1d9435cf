"""Per-tenant working preferences: contact intervals, complaint response target, default language."""
