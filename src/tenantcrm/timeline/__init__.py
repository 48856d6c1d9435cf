"""One timeline per customer: contacts, loans, repayments, classes, complaints, risk steps, changes."""
