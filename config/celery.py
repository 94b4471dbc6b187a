"""The Celery application; its configuration lives in settings under CELERY_*."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _logging(**kwargs: Any) -> None:
    """The worker and beat log through Django's LOGGING (LOG_FORMAT), not Celery's own
    format: with a receiver connected, Celery leaves the root logger alone."""
    from django.conf import settings

    from config.logs import configure

    configure(settings.LOGGING)


@signals.task_failure.connect
def _task_failed(sender: Any = None, **kwargs: Any) -> None:
    from config import metrics

    metrics.task_failed(task=getattr(sender, "name", "unknown"))


@signals.worker_init.connect
def _exporter(**kwargs: Any) -> None:
    from config import metrics
    from config.exposition import worker_exporter_start

    metrics.tasks_known([name for name in app.tasks if not name.startswith("celery.")])
    worker_exporter_start()
