"""The Celery side: the app and its configuration, the tasks, publishing, housekeeping, beat."""
