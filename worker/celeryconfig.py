"""Celery configuration module, loaded lazily by ``app.config_from_object``.

Importing the app is therefore free, and the settings are validated when a worker or beat starts.
"""

from worker.celery_conf import build_config
from worker.config import get_settings

globals().update(build_config(get_settings()))
