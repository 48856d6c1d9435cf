"""Users, sign-in, web sessions, API tokens and the permissions they carry."""
