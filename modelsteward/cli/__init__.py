"""The `steward` command line: thin commands over the facade."""
