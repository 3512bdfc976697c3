"""The Northwind Bank demo: generated applicants and the bank's credit models (see DEMO-STORY.md)."""
