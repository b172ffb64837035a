"""Celery task definitions: thin wrappers over plain functions in ``worker``."""
