"""Monitoring: monitors over the prediction log, their results, and business KPIs."""
