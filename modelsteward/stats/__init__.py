"""Pure statistics over tabular data: schemas, fingerprints (and, later, drift)."""
