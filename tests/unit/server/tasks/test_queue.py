"""qasdk's jobs in Procrastinate: the task job and the periodic retention job."""

from __future__ import annotations

from qasdk_server.tasks.queue import RETENTION_CRON, RETENTION_TASK, _KeepUntilDone, queue_app
from qasdk_server.tasks.runner import DatabaseUnavailable, HandBack, TaskBusy


def test_retention_is_a_periodic_job_on_qasdks_queue() -> None:
    app = queue_app("postgresql://nowhere/none", pool_size=1)
    (periodic,) = list(app.periodic_registry.periodic_tasks.values())
    assert periodic.task.name == RETENTION_TASK
    assert periodic.cron == RETENTION_CRON
    assert periodic.task.queue == "qasdk"


def test_retention_runs_in_the_workers_own_pool() -> None:
    # Deduplicated by Procrastinate per period whichever queue it is deferred on, so a
    # deployment whose workers all serve other pools still applies retention.
    app = queue_app("postgresql://nowhere/none", pool_size=1, pools=("gpu", "default"))
    (periodic,) = list(app.periodic_registry.periodic_tasks.values())
    assert periodic.task.queue == "qasdk.gpu"


def test_a_job_stays_until_its_task_has_an_outcome() -> None:
    strategy = _KeepUntilDone(busy_delay=10)

    for exc in (HandBack("t"), DatabaseUnavailable("t"), TaskBusy("t")):
        assert strategy.get_retry_decision(exception=exc, job=None) is not None
    assert strategy.get_retry_decision(exception=ValueError("the task's own"), job=None) is None
