"""Server-rendered pages (Jinja2 + htmx): routes per capability, rendering and request scope."""
