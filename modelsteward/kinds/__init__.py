"""Model kinds: the plug-in contract, the registry and the built-in kinds."""
