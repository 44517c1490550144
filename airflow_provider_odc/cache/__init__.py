"""The encrypted, shared access-token cache."""
