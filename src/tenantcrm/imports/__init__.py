"""Importing customers (and their collateral and loans) from Excel or CSV sheets."""
