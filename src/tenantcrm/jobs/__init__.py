"""Background jobs: a PostgreSQL queue (pgqueuer) whose jobs each act for one tenant."""
