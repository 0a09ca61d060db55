"""Dashboard panels: each reads session state in ``update(...)`` and reuses its plot items."""
