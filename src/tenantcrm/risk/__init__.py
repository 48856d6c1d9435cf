"""Risk cases on customers, their measures, and early-warning rules and flags."""
