"""Exporting the lists a user can see to .xlsx: typed cells, masked personal data, audited."""
