"""Retention: per-category policies, dry runs and runs that delete or anonymise, legal hold."""
