"""Predictions trained on the warehouse and written back into it (schema `predictions`): customer lifetime
value (clv.py, clv_warehouse.py) and churn, purchase and lead-conversion propensity (propensity*.py)."""
