"""Predictions trained on the warehouse and written back into it (schema `predictions`)."""
