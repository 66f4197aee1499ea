"""The annotator web app (FastAPI + Jinja2): voting grid, gold items, dashboard."""
