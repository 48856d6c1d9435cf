"""Saved list views: a user's named choice of columns, filters and order for a list page."""
