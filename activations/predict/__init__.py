"""Predictive traits trained on the warehouse: customer lifetime value (clv.py, clv_warehouse.py)."""
