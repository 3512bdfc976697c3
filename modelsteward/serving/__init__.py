"""Serving: running models on data, in batch now and behind the gateway later."""
