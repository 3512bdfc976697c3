"""The catalog service: registering versions, aliases, lineage and loading models."""
