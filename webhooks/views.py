"""The console's Webhooks pages: a portal account's endpoints (list, add, edit, rotate the
secret, delete) and each endpoint's delivery log with "Redeliver". For MSSP staff and the
account's admin; another account's endpoint or delivery is a 404 (accounts.scoping).

A secret is shown only in the response to the POST that made it (adding an endpoint, rotating
its secret): never in a URL, the session or a message, and that response is not cached.

Adding an endpoint, changing one (its URL) and rotating its secret ask for a fresh second-factor
code (accounts.permissions.step_up), as an API token does: an endpoint receives every portal
user's name and email from then on, so a hijacked console session must not be enough to point
one at an attacker's server."""

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import scoping
from accounts.errors import LifecycleError
from accounts.permissions import console_view, step_up
from helpers.client_ip import client_ip
from webhooks import endpoints
from webhooks.forms import EndpointForm
from webhooks.models import Delivery, Endpoint

LOG_PAGE_SIZE = 50


def _endpoint(request, account, endpoint_id):
    return scoping.get_account_row(request.user, account, Endpoint.objects, endpoint_id)


def _list_page(request, account, form, *, status=200, **extra):
    context = {
        "account": account,
        "section": "webhooks",
        "endpoints": scoping.account_rows(request.user, account, Endpoint.objects),
        "form": form,
        **extra,
    }
    return render(request, "webhooks/endpoints.html", context, status=status)


def _save(form, request, account, endpoint=None):
    data = form.cleaned_data
    fields = {
        "url": data["url"],
        "events": data["events"],
        "description": data["description"].strip(),
        "active": data["active"],
    }
    if endpoint is None:
        return endpoints.create(account, by=request.user, ip=client_ip(request), **fields)
    return endpoints.update(endpoint, by=request.user, ip=client_ip(request), **fields)


@never_cache
@console_view
@require_http_methods(["GET", "POST"])
def endpoint_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    if request.method == "GET":
        return _list_page(request, account, EndpointForm(account=account))
    stepped_up = step_up(request)
    if stepped_up:
        return stepped_up
    form = EndpointForm(request.POST, account=account)
    if not form.is_valid():
        return _list_page(request, account, form, status=400)
    try:
        endpoint = _save(form, request, account)
    except LifecycleError as error:  # another admin added it meanwhile
        form.add_error(None, str(error))
        return _list_page(request, account, form, status=409)
    return _list_page(request, account, EndpointForm(account=account), created=endpoint)


def _edit_page(request, account, endpoint, form, *, status=200, **extra):
    context = {
        "account": account,
        "section": "webhooks",
        "endpoint": endpoint,
        "form": form,
        **extra,
    }
    return render(request, "webhooks/endpoint_edit.html", context, status=status)


@never_cache
@console_view
@require_http_methods(["GET", "POST"])
def endpoint_edit(request, slug, endpoint_id):
    account = scoping.get_portal_account(request.user, slug)
    endpoint = _endpoint(request, account, endpoint_id)
    if request.method == "GET":
        form = EndpointForm(account=account, endpoint=endpoint)
        return _edit_page(request, account, endpoint, form)
    stepped_up = step_up(request)
    if stepped_up:
        return stepped_up
    form = EndpointForm(request.POST, account=account, endpoint=endpoint)
    if not form.is_valid():
        return _edit_page(request, account, endpoint, form, status=400)
    try:
        _save(form, request, account, endpoint)
    except LifecycleError as error:  # another admin took the URL meanwhile
        form.add_error(None, str(error))
        return _edit_page(request, account, endpoint, form, status=409)
    messages.success(request, "Endpoint saved.")
    return redirect("webhook-endpoints", slug=account.slug)


@never_cache
@console_view
@require_POST
def endpoint_rotate(request, slug, endpoint_id):
    account = scoping.get_portal_account(request.user, slug)
    stepped_up = step_up(request)
    if stepped_up:
        return stepped_up
    endpoint = endpoints.rotate_secret(
        _endpoint(request, account, endpoint_id), by=request.user, ip=client_ip(request)
    )
    form = EndpointForm(account=account, endpoint=endpoint)
    return _edit_page(request, account, endpoint, form, rotated=True)


@console_view
@require_POST
def endpoint_delete(request, slug, endpoint_id):
    account = scoping.get_portal_account(request.user, slug)
    endpoint = _endpoint(request, account, endpoint_id)
    endpoints.delete(endpoint, by=request.user, ip=client_ip(request))
    messages.success(request, f"The endpoint at {endpoint.host} was deleted: no more events.")
    return redirect("webhook-endpoints", slug=account.slug)


def _cursor(value):
    try:
        return int(value) if value else None
    except ValueError:
        return None


@console_view
def delivery_log(request, slug, endpoint_id):
    """Newest first, LOG_PAGE_SIZE at a time, by id ranges on the (endpoint, -id) index: a page
    costs the same however long the log (no count, no offset)."""
    account = scoping.get_portal_account(request.user, slug)
    endpoint = _endpoint(request, account, endpoint_id)
    if request.method != "GET":  # after the scoping: another account's log is a 404 whatever
        return HttpResponseNotAllowed(["GET"])
    rows = endpoint.deliveries.order_by("-id")
    before = _cursor(request.GET.get("before"))
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(rows[: LOG_PAGE_SIZE + 1])
    older = page[LOG_PAGE_SIZE - 1].pk if len(page) > LOG_PAGE_SIZE else None
    context = {
        "account": account,
        "section": "webhooks",
        "endpoint": endpoint,
        "deliveries": page[:LOG_PAGE_SIZE],
        "older": older,
        "paged": before is not None,
        "Status": Delivery.Status,
    }
    return render(request, "webhooks/delivery_log.html", context)


@console_view
@require_POST
def redeliver(request, slug, endpoint_id, delivery_id):
    account = scoping.get_portal_account(request.user, slug)
    endpoint = _endpoint(request, account, endpoint_id)
    delivery = get_object_or_404(endpoint.deliveries, pk=delivery_id)
    try:
        endpoints.redeliver(delivery, by=request.user, ip=client_ip(request))
    except LifecycleError as error:
        messages.info(request, str(error))
    else:
        messages.success(request, f"{delivery.event_type} {delivery.event_id} queued again.")
    return redirect("webhook-deliveries", slug=account.slug, endpoint_id=endpoint.pk)
