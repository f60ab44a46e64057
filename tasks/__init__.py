"""Mapp Engage prepared SMS through Celery."""
