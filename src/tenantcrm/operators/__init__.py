"""Platform operators: accounts with TOTP, the console's services, support grants and the event log."""
