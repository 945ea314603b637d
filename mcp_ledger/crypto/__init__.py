"""Envelope encryption: per-subject data keys wrapped by a key-encryption key, and the
sealing of personal fields with them (crypto-shredding destroys the data key)."""
