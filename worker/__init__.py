"""lme-enrich: AI assessments for LME security alerts, written back into Elasticsearch.

Exposes the Celery ``app`` so that ``celery -A worker worker`` works.
"""

from worker.app import app

__all__ = ["app"]
