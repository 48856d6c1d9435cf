"""Collateral pledged by customers: property, vehicles, equipment, deposits and their appraisals."""
