"""The two steps of a send as plain functions, the retry policy, and the objects they run on.

Imports no Celery: the worker layer (:mod:`tasks.worker`) turns the steps into tasks.
"""
