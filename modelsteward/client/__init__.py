"""The remote body of the facade (an HTTP client for `steward up`)."""
