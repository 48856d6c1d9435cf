"""PII: the key hierarchy, field encryption, blind indexes, masking and key rotation."""
