"""The CSV import wizard of a portal account: history, upload, map columns, options and dry
run, start, progress (polled with HTMX) and downloads. The pipeline itself is in
imports.portal_users (portal users) and imports.contacts_import (contacts), picked by the job's
target; the run happens in the Celery task imports.tasks.run_import."""

import csv
import io
import logging
from datetime import datetime, timedelta
from pathlib import PurePath
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from accounts import audit, scoping
from accounts.permissions import console_view
from helpers.client_ip import client_ip
from helpers.file_uploads import FileSizeLimit, without_refusal
from helpers.spreadsheet_safety import neutralise_row
from imports import contacts_import, dry_runs, pipeline, portal_users, tasks
from imports.column_mapping import PORTAL_USER_FIELDS, MappingError, auto_map, map_columns
from imports.csv_reader import DEFAULT_EXAMPLE_HEADER, CsvError, read_csv, too_large_message
from imports.forms import MapForm, OptionsForm, PortalUsersMapForm, UploadForm
from imports.models import ImportJob
from imports.pipeline import failure_counts
from imports.tasks import start_dry_run
from operations import health

logger = logging.getLogger(__name__)

Status = ImportJob.Status
SETTING_UP = pipeline.SETTING_UP
STARTABLE = (Status.MAPPED, Status.VALIDATED)
CANCELLABLE = (*SETTING_UP, Status.RUNNING)
EXAMPLE_CONTACT_ID = "0035e00000AbCdEfGhI"
EXAMPLE_SALESFORCE_ID = "a01M00000062mPgIAI"
MISSING_FILE = dry_runs.MISSING_FILE
DRY_RUN_FAILURES = "dry-run-failures"  # the download of the review's failure file
NO_ROLE_COLUMN_HINT = (
    "For a file without roles, choose the role for rows without one: every row then gets it."
)


def _account_and_job(request, slug, job_id):
    """The account through the scoping helper, then only that account's jobs: 404 otherwise."""
    account = scoping.get_portal_account(request.user, slug)
    job = get_object_or_404(ImportJob.objects.filter(portal_account=account), pk=job_id)
    return account, job


def _fields(job):
    return contacts_import.FIELDS if job.target == ImportJob.Target.CONTACTS else PORTAL_USER_FIELDS


STEPS = [(1, "Upload"), (2, "Map columns"), (3, "Options and review"), (4, "Import")]


def _context(account, **extra):
    return {"account": account, "section": "imports", "steps": STEPS, **extra}


def _next_step_url(account, job):
    if job.files_deleted_at:  # nothing left to continue with: the job page says so
        return reverse("import-detail", args=[account.slug, job.pk])
    if job.status == Status.UPLOADED:
        return reverse("import-map", args=[account.slug, job.pk])
    if job.status in STARTABLE:
        return reverse("import-review", args=[account.slug, job.pk])
    return reverse("import-detail", args=[account.slug, job.pk])


def _is_draft(job):
    """Never started: it can be discarded (job_discard)."""
    return job.status in SETTING_UP and job.started_at is None


@console_view
def job_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    jobs = ImportJob.objects.filter(portal_account=account).select_related("started_by")
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    rows = [(job, _next_step_url(account, job), _is_draft(job)) for job in page.object_list]
    return render(request, "imports/list.html", _context(account, page=page, rows=rows))


def _csv_response(rows, filename):
    """A CSV download built by the csv module (a comma, quote or line break in a value stays in
    its cell) with every cell neutralised: values such as role names are typed by people, and
    one starting with = would run as a formula in the spreadsheet that opens the file."""
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow(neutralise_row(row))
    body = text.getvalue().encode("utf-8-sig")  # the byte-order mark makes Excel read UTF-8
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@console_view
def template_csv(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    if request.GET.get("target") == ImportJob.Target.CONTACTS:
        rows = [
            contacts_import.EXAMPLE_HEADER,
            [
                EXAMPLE_CONTACT_ID,
                EXAMPLE_SALESFORCE_ID,
                "Ada Lovelace",
                "ada@example.com",
                "Acme Corp",
            ],
            ["", "", "Grace Hopper", "grace@example.com", "Acme Corp"],
        ]
        return _csv_response(rows, "contacts-template.csv")
    role = scoping.roles(request.user, account).filter(active=True).order_by("name").first()
    rows = [DEFAULT_EXAMPLE_HEADER, [EXAMPLE_CONTACT_ID, role.name if role else "Partner User"]]
    return _csv_response(rows, "portal-users-template.csv")


@csrf_exempt  # checked by _job_new, once the size limit is in place (see below)
def job_new(request, slug):
    """The upload. The size limit has to be among the request's upload handlers before
    anything reads the body, and CsrfViewMiddleware reads it (request.POST) before the view
    runs; so, as Django's upload-handler docs prescribe, the middleware skips this view and the
    view checks CSRF itself right after adding the limit."""
    limit = FileSizeLimit(
        request,
        max_bytes=settings.IMPORT_MAX_BYTES,
        message=too_large_message(settings.IMPORT_MAX_BYTES),
    )
    # Assigned, not inserted: Django raises if the body was already read, which would mean the
    # limit silently did nothing.
    request.upload_handlers = [limit, *without_refusal(request.upload_handlers)]
    return _job_new(request, slug, limit)


@console_view
@csrf_protect
def _job_new(request, slug, limit):
    account = scoping.get_portal_account(request.user, slug)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and limit.refused:
        form.is_valid()  # the other fields' errors show too
        form.errors.pop("file", None)  # "required": the file was refused, not missing
        form.add_error("file", limit.message)
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        target = form.cleaned_data["target"]
        example_header = (
            contacts_import.EXAMPLE_HEADER
            if target == ImportJob.Target.CONTACTS
            else DEFAULT_EXAMPLE_HEADER
        )
        try:
            read_csv(  # refuses a bad file now
                upload,
                max_bytes=settings.IMPORT_MAX_BYTES,
                max_columns=settings.IMPORT_MAX_COLUMNS,
                example_header=example_header,
            )
        except CsvError as error:
            form.add_error("file", error.message)
        else:
            upload.seek(0)
            if target == ImportJob.Target.CONTACTS:
                options = dict(contacts_import.DEFAULT_OPTIONS)
            else:
                options = dict(portal_users.DEFAULT_OPTIONS)
            job = ImportJob(
                portal_account=account,
                target=target,
                original_filename=PurePath(upload.name).name[:255],
                options=options,
                started_by=request.user,
            )
            job.source_file.save(job.original_filename or "upload.csv", upload, save=False)
            job.save()
            return redirect("import-map", account.slug, job.pk)
    status = 400 if request.method == "POST" else 200
    context = _context(account, form=form, max_mb=settings.IMPORT_MAX_BYTES // (1024 * 1024))
    return render(request, "imports/new.html", context, status=status)


def _read_header(job):
    with job.source_file.open("rb") as source:
        # The column limit again: a file uploaded before it existed must not build a mapping
        # page of a select per field times an option per column.
        return read_csv(
            source, max_bytes=settings.IMPORT_MAX_BYTES, max_columns=settings.IMPORT_MAX_COLUMNS
        ).header


@console_view
def job_map(request, slug, job_id):
    account, job = _account_and_job(request, slug, job_id)
    if job.status not in SETTING_UP or job.files_deleted_at:
        return redirect("import-detail", account.slug, job.pk)
    errors, form, header = [], None, []
    try:
        header = _read_header(job)
    except CsvError as error:
        errors = [error.message]
    except OSError:
        errors = [MISSING_FILE]
    else:
        fields = _fields(job)
        mapping = job.column_mapping or auto_map(header, fields)
        if job.target == ImportJob.Target.CONTACTS:
            form = MapForm(request.POST or None, header=header, mapping=mapping, fields=fields)
        else:
            form = PortalUsersMapForm(
                request.POST or None,
                header=header,
                mapping=mapping,
                person=request.user,
                account=account,
                default_role=job.options.get("default_role"),
            )
        if request.method == "POST" and form.is_valid():
            options = dict(job.options)
            if job.target == ImportJob.Target.PORTAL_USERS:
                options["default_role"] = form.default_role_id()
                options = portal_users.normalised_options(options)
                fields = portal_users.fields_for(options)
            try:
                job.column_mapping = map_columns(header, fields, form.choices())
            except MappingError as error:
                errors = error.messages
                no_role_column = not form.cleaned_data.get("role", "x")
                if no_role_column and not options.get("default_role"):
                    errors.append(NO_ROLE_COLUMN_HINT)
            else:
                job.options = options
                job.status = Status.MAPPED
                job.dry_run = {}  # it was of the old columns
                job.save(update_fields=["column_mapping", "options", "status", "dry_run"])
                return redirect("import-review", account.slug, job.pk)
    status = 400 if errors or (form is not None and form.errors) else 200
    context = _context(account, job=job, form=form, header=header, errors=errors)
    return render(request, "imports/map.html", context, status=status)


@console_view
def job_review(request, slug, job_id):
    """Options and the dry run over the whole file (imports.dry_runs): a small file is checked
    in this request, a big one by a worker while the page polls (`poll=1`: only show the state).
    The dry run is kept on the job; it is done again when the options change or the person asks
    ("Check again" names the dry run it replaces, so a reload does not start another)."""
    account, job = _account_and_job(request, slug, job_id)
    if job.status not in SETTING_UP or job.files_deleted_at:
        return redirect("import-detail", account.slug, job.pk)
    if job.status == Status.UPLOADED:
        return redirect("import-map", account.slug, job.pk)
    contacts = job.target == ImportJob.Target.CONTACTS
    query = {}
    if contacts:
        options = contacts_import.normalised_options(job.options)
    else:
        options = dict(job.options)
        if "send_activation" in request.GET or request.GET.get("checked"):
            options["send_activation"] = bool(request.GET.get("send_activation"))
        options = portal_users.normalised_options(options)
        query = {"checked": "1", "send_activation": "1" if options["send_activation"] else ""}
    again = request.GET.get("again")
    if not request.GET.get("poll") and (
        not dry_runs.is_current(job, options) or again == job.dry_run.get("token")
    ):
        start_dry_run(job, options)
    dry_run = job.dry_run
    review_url = reverse("import-review", args=[account.slug, job.pk])
    report = dry_runs.report(job)
    context = _context(
        account,
        job=job,
        contacts=contacts,
        form=None
        if contacts
        else OptionsForm(initial={"send_activation": options["send_activation"]}),
        dry_run=dry_run,
        report=report,
        nothing_to_do=_nothing_to_do(report, contacts),
        failures_url=reverse("import-download", args=[account.slug, job.pk, DRY_RUN_FAILURES])
        if report and report.failed and dry_runs.failure_file_name(job)
        else "",
        error=dry_run.get("error", "") if dry_run.get("state") == dry_runs.FAILED else "",
        polling=dry_run.get("state") == dry_runs.RUNNING,
        poll_url=f"{review_url}?{urlencode({**query, 'poll': '1'})}",
        again_url=f"{review_url}?{urlencode({**query, 'again': dry_run.get('token', '')})}",
        checked_at=_parsed(dry_run.get("finished_at")),
        send_activation=bool(options.get("send_activation")),
        default_role=_default_role(request, account, options),
    )
    template = "imports/review.html#review" if request.htmx else "imports/review.html"
    return render(request, template, context, status=400 if context["error"] else 200)


def _default_role(request, account, options):
    """The role chosen for rows without one (it may have been deleted since), or None."""
    role_id = options.get("default_role")
    return scoping.roles(request.user, account).filter(pk=role_id).first() if role_id else None


def _nothing_to_do(report, contacts):
    """Why the dry run leaves nothing to import (the Start button is disabled), or ""."""
    if report is None or report.would_create or (contacts and report.would_update):
        return ""
    if not report.total_rows:
        return "The file has no rows to import. Upload a file with at least one row."
    # Rows that passed every check but found no free seat: the licenses are the reason.
    full = [line["label"] for line in getattr(report, "license_lines", []) if not line["free"]]
    if full:
        return (
            f"No {' or '.join(full)} licenses are free, so no user can be created. Free seats "
            "or raise the account's licenses, then check again."
        )
    done = "created or updated" if contacts else "created"
    return (
        f"Nothing can be {done}: every row fails (the reasons are above). Download the "
        "failing rows, fix them and upload the file again."
    )


def _parsed(iso_datetime):
    return datetime.fromisoformat(iso_datetime) if iso_datetime else None


@console_view
def job_start(request, slug, job_id):
    account, job = _account_and_job(request, slug, job_id)  # scope first: 404 before 405
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if job.target == ImportJob.Target.CONTACTS:
        options = contacts_import.normalised_options(job.options)
    else:
        options = {**job.options, "send_activation": bool(request.POST.get("send_activation"))}
    ticket = tasks.start_run(job, options, request.user)
    if ticket is None:
        messages.error(request, "This import cannot be started (it is not ready, or ran already).")
        return redirect("import-detail", account.slug, job.pk)
    transaction.on_commit(lambda: _queue(job.pk, ticket))
    return redirect("import-detail", account.slug, job.pk)


def _queue(job_id, ticket):
    if not tasks.queue_run(job_id, ticket):  # say so, and let the person start again
        ImportJob.objects.filter(pk=job_id, status=Status.RUNNING, run_token=ticket).update(
            status=Status.VALIDATED,
            error_message="The import could not be queued (task queue unavailable). "
            "Start it again in a minute.",
        )


@console_view
def job_resume(request, slug, job_id):
    """Resume a stalled import (no progress for IMPORT_STALL_MINUTES; the sweep would do it
    within a minute or two anyway) or a failed one: it goes on after the last committed row."""
    account, job = _account_and_job(request, slug, job_id)  # scope first: 404 before 405
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if job.status == Status.FAILED:
        resumed = tasks.resume_failed(job.pk)
    else:
        resumed = tasks.resume_stalled(job.pk)
    if resumed:
        messages.success(
            request, f"Import resumed: it goes on after the {job.processed:,} rows already done."
        )
    elif job.status == Status.RUNNING:
        messages.error(request, "This import is making progress: it needs no resume.")
    else:
        messages.error(request, "This import cannot be resumed.")
    return redirect("import-detail", account.slug, job.pk)


@console_view
def job_discard(request, slug, job_id):
    """Discard a draft: an import that was never started (uploaded, mapped or checked). Its row
    and files go; the audit log keeps who discarded which file. A started import stays as
    history (it changed things)."""
    account, job = _account_and_job(request, slug, job_id)  # scope first: 404 before 405
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    with transaction.atomic():
        draft = (
            ImportJob.objects.select_for_update()
            .filter(pk=job.pk, status__in=SETTING_UP, started_at__isnull=True)
            .first()
        )
        if draft is not None:
            audit.record(
                "discard_import",
                by=request.user,
                portal_account=account,
                ip=client_ip(request),
                detail=f"{draft.original_filename or '(no name)'}, uploaded by "
                f"{draft.started_by.name if draft.started_by else 'someone since deleted'}",
            )
            files = ImportJob(pk=draft.pk, source_file=draft.source_file.name)  # as it was
            draft.delete()
            transaction.on_commit(lambda: _delete_draft_files(files))
    if draft is None:
        messages.error(request, "This import was started: it stays in the history.")
        return redirect("import-detail", account.slug, job.pk)
    messages.success(request, f"Import draft {job.original_filename or '(no name)'} discarded.")
    return redirect("import-list", account.slug)


def _delete_draft_files(job):
    dry_runs.delete_files(job)
    if job.source_file.name:
        job.source_file.storage.delete(job.source_file.name)


@console_view
def job_cancel(request, slug, job_id):
    account, job = _account_and_job(request, slug, job_id)  # scope first: 404 before 405
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    cancelled = ImportJob.objects.filter(pk=job.pk, status__in=CANCELLABLE).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    if cancelled:
        messages.success(
            request, "Import cancelled. Rows already imported stay; the rest are not imported."
        )
    else:
        messages.error(request, "This import has already finished.")
    return redirect("import-detail", account.slug, job.pk)


def _progress(job):
    """Percent, rows per second and seconds left for the progress bar."""
    total = job.total_rows or 0
    percent = round(100 * job.processed / total) if total else 0
    rate = left = None
    if job.started_at and job.processed:
        end = job.finished_at or timezone.now()
        elapsed = max((end - job.started_at).total_seconds(), 0.001)
        rate = job.processed / elapsed
        left = max(total - job.processed, 0) / rate if rate else None
    return {"percent": percent, "rate": rate, "left": left}


@console_view
def job_detail(request, slug, job_id):
    account, job = _account_and_job(request, slug, job_id)
    failures = []
    if job.status in (Status.DONE, Status.CANCELLED, Status.FAILED) and job.failed:
        labels = dry_runs.pipeline_of(job).REASON_LABELS
        counts = job.failure_reason_counts if job.files_deleted_at else failure_counts(job)
        failures = [
            (labels.get(code, code), count)
            for code, count in sorted(counts.items(), key=lambda item: -item[1])
        ]
    context = _context(
        account,
        job=job,
        progress=_progress(job),
        failures=failures,
        contacts=job.target == ImportJob.Target.CONTACTS,
        updated=contacts_import.updated_count(job),
        polling=job.status == Status.RUNNING,
        can_cancel=job.status in CANCELLABLE and not _is_draft(job),
        can_discard=_is_draft(job),
        can_resume=(job.is_stalled or (job.status == Status.FAILED and job.started_at))
        and not job.files_deleted_at,
        next_url=_next_step_url(account, job),
        files_deleted=files_deleted_message(job) if job.files_deleted_at else "",
        no_worker=_no_worker(job),
    )
    template = "imports/detail.html#progress" if request.htmx else "imports/detail.html"
    return render(request, template, context)


def _no_worker(job):
    """Why a running import makes no progress when no worker is alive (the health check's
    words), else "": the page must not say it is running, or will be picked up, meanwhile.
    An import that moves (one run by `manage.py import_portal_users`, which needs no worker)
    is left alone."""
    quiet_since = timezone.now() - timedelta(seconds=settings.HEALTH_WORKER_MAX_AGE_SECONDS)
    if job.status != Status.RUNNING or job.heartbeat > quiet_since:
        return ""
    check = health.worker()
    return "" if check.ok else check.detail


DOWNLOADS = {
    "source": "source_file",
    "success": "success_file",
    "failure": "failure_file",
    DRY_RUN_FAILURES: None,
}


@console_view
def job_download(request, slug, job_id, which):
    account, job = _account_and_job(request, slug, job_id)
    if which not in DOWNLOADS:
        raise Http404
    if job.files_deleted_at:
        return HttpResponse(
            files_deleted_message(job), status=410, content_type="text/plain; charset=utf-8"
        )
    stem = PurePath(job.original_filename or f"import-{job.pk}.csv").stem
    if which == DRY_RUN_FAILURES:
        return _dry_run_failures_response(job, f"{stem}-failures-dry-run.csv")
    fieldfile = getattr(job, DOWNLOADS[which])
    if not fieldfile or not fieldfile.storage.exists(fieldfile.name):
        raise Http404
    if which == "source":
        return _uploaded_file_response(job, fieldfile)
    # The result files are written by imports.result_files: the csv module, every cell
    # neutralised, so they are safe to serve as CSV.
    done = "imported" if job.target == ImportJob.Target.CONTACTS else "created"
    filename = f"{stem}-{done}.csv" if which == "success" else f"{stem}-failed.csv"
    return FileResponse(
        fieldfile.open("rb"), as_attachment=True, filename=filename, content_type="text/csv"
    )


def _dry_run_failures_response(job, filename):
    """The finished dry run's failed rows (imports.dry_runs writes them as the result files
    are written: csv module, every cell neutralised)."""
    name = dry_runs.failure_file_name(job)
    storage = job.source_file.storage
    if not name or not storage.exists(name):
        raise Http404
    return FileResponse(
        storage.open(name, "rb"), as_attachment=True, filename=filename, content_type="text/csv"
    )


def _uploaded_file_response(job, fieldfile):
    """The uploaded file, byte for byte, as opaque data that no spreadsheet opens as CSV.

    Its cells are whatever the uploader typed, formulas included, and the person downloading
    it may be someone else (MSSP staff, another admin of the account); served as a .csv it
    would run those formulas in their spreadsheet. Re-writing it with neutralised cells was
    the alternative, but this download exists to show exactly what was uploaded: the failure
    file cites its physical line numbers, which a re-write would shift (blank lines, quoted
    line breaks) and whose cells it would change (apostrophes, encoding, separator). So the
    bytes stay and the framing changes: application/octet-stream with nosniff (no browser
    or OS handler guesses "CSV" from the content), always an attachment, and a name ending in
    .txt (opening it starts a text editor, not a spreadsheet)."""
    original = PurePath(job.original_filename or f"import-{job.pk}.csv").name
    response = FileResponse(
        fieldfile.open("rb"),
        as_attachment=True,
        filename=f"{original}.txt",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def files_deleted_message(job):
    when = date_filter(timezone.localtime(job.files_deleted_at), "M j, Y")
    return (
        f"The files of this import (the uploaded file and the result files) were deleted on "
        f"{when}: import files are kept for {settings.IMPORT_FILE_RETENTION_DAYS} days. "
        "The counts and this history stay."
    )
