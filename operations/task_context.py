"""A Celery task logs with the request id of the request that queued it: the publishing process
puts the id in the message's headers (before_task_publish), the worker binds it for the task's
log lines (task_prerun) and lets go after (task_postrun). A task queued by a task (the outbox's
bulk hand-out) passes the same id on; one that beat queued has none."""

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from portal_admin import logging_setup

HEADER = "portal_admin_request_id"
_bound = {}


@before_task_publish.connect(dispatch_uid="operations.request_id_to_task")
def _add_request_id(headers=None, **kwargs):
    request_id = logging_setup.current_request_id()
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


@task_prerun.connect(dispatch_uid="operations.request_id_in_task")
def _bind_request_id(task_id=None, task=None, **kwargs):
    if task is None:
        return
    request = task.request
    if request.is_eager:
        # Run in the web process (no broker): the request's own context is already there.
        return
    context = logging_setup.LogContext(
        request_id=getattr(request, HEADER, None) or "", action=task.name
    )
    _bound[task_id] = logging_setup.bind(context)


@task_postrun.connect(dispatch_uid="operations.request_id_out_of_task")
def _unbind_request_id(task_id=None, **kwargs):
    token = _bound.pop(task_id, None)
    if token is None:
        return
    try:
        logging_setup.unbind(token)
    except ValueError:
        # Ran in another context than the prerun (a pool that switches them): nothing of this
        # task's context may outlive it there either.
        logging_setup.bind(None)


@setup_logging.connect(dispatch_uid="operations.keep_django_logging")
def _keep_django_logging(**kwargs):
    """A worker and beat log through Django's LOGGING (JSON lines, the context, the redaction
    filter) rather than Celery's own handler: a receiver here tells Celery to leave logging
    alone. Django configured it before (Celery's Django fixup runs django.setup() first)."""
