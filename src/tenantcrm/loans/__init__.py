"""Loans: products, exact repayment schedules, repayments, arrears and classification."""
