"""Complaints and feedback from customers, with a response-time target."""
