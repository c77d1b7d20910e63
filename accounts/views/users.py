"""The users of a portal account: Enabled / Disabled / Unconfirmed tabs, row and bulk actions,
add user, CSV export. Every response to an HTMX request is a partial of the page's template."""

import csv

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import push_url, retarget

from accounts import lifecycle, reminders, scoping
from accounts.errors import LifecycleError
from accounts.forms.users import AddUserForm, ChangeRoleForm
from accounts.models import AccessPolicy, UserType
from accounts.permissions import check_may_act_on, console_view, may_move_admin_seat, step_up
from accounts.user_actions import ACTIONS, BULK_ACTIONS, bulk_actions_for, first_names
from accounts.user_listing import SIGNED_IN_FILTERS, SORTS, Listing, tab_counts
from accounts.user_rows import user_rows
from contacts import crm_accounts
from helpers.client_ip import client_ip
from helpers.row_ids import row_ids
from helpers.spreadsheet_safety import neutralise_row

TEMPLATE = "accounts/users.html"


def _list_context(request, account, listing):
    tabs = tab_counts(request.user, account)
    page = listing.page(
        request.user, account, tab_total=dict((t, n) for t, _, n in tabs)[listing.tab]
    )
    if listing.tab == "unconfirmed":
        reminders.annotate_next_due(
            page.object_list, scoping.account_rows(request.user, account, AccessPolicy.objects)
        )
    return {
        "account": account,
        "section": "users",
        "listing": listing,
        "tabs": tabs,
        "other_tabs": [(tab, label) for tab, label, _count in tabs if tab != listing.tab],
        "page": page,
        "rows": user_rows(request.user, account, listing, page.object_list),
        "sorts": {key: label for key, (label, _) in SORTS.items()},
        "roles": scoping.roles(request.user, account).order_by("name"),
        "user_types": UserType.choices,
        "signed_in_filters": SIGNED_IN_FILTERS,
        "crm_account_names": crm_accounts.suggestions(request.user, account),
        "bulk_actions": bulk_actions_for(listing.tab),
        "bulk_limit": settings.BULK_ACTION_MAX_USERS,
    }


def _users_url(account, listing):
    query = listing.query_string()
    return reverse("users", args=[account.slug]) + (f"?{query}" if query else "")


def _back_to_list(request, account, listing):
    """After a change: the list as it was (tab, search, page), with the outcome message."""
    if not request.htmx:
        return redirect(_users_url(account, listing))
    response = render(request, f"{TEMPLATE}#user-list", _list_context(request, account, listing))
    return push_url(response, _users_url(account, listing))


def _confirm(request, context, status=200):
    if request.htmx:
        response = render(request, "accounts/user_confirm.html#dialog", context, status=status)
        return retarget(response, "#dialog-slot")
    return render(request, "accounts/user_confirm.html", context, status=status)


@console_view
def user_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    listing = Listing.from_params(request.GET)
    context = _list_context(request, account, listing)
    if not request.htmx:
        return render(request, TEMPLATE, context)
    # The address bar shows the list as the listing spells it (as the contacts list does): no
    # empty filter fields from the search form, nothing that is the default.
    return push_url(render(request, f"{TEMPLATE}#user-list", context), _users_url(account, listing))


@console_view
def user_action(request, slug, user_id, action):
    account = scoping.get_portal_account(request.user, slug)
    target = scoping.get_portal_user(request.user, account, user_id)
    action = ACTIONS.get(action)
    if action is None:
        raise Http404
    check_may_act_on(request.user, target)
    if action.name == "make-admin":
        if not may_move_admin_seat(request.user):
            raise PermissionDenied("Only MSSP staff can move the account admin seat.")
        stepped_up = step_up(request)
        if stepped_up:
            return stepped_up
    listing = Listing.from_params(request.POST if request.method == "POST" else request.GET)
    form = None
    if action.needs_role:
        form = ChangeRoleForm(
            request.POST if request.method == "POST" else None,
            person=request.user,
            account=account,
            user=target,
            initial={"role": target.role_id},
        )
    context = {
        "account": account,
        "section": "users",
        "action": action,
        "target": target,
        "form": form,
        "listing": listing,
        "consequence": action.describe(target),
        "question": action.ask(target),
    }
    if request.method != "POST":
        return _confirm(request, context)
    if form is not None and not form.is_valid():
        return _confirm(request, context, status=400)
    try:
        role = form.cleaned_data["role"] if form else None
        action.perform(target, request.user, client_ip(request), role)
    except LifecycleError as error:
        context["error"] = str(error)
        return _confirm(request, context, status=409)
    messages.success(request, action.said(target, role))
    return _back_to_list(request, account, listing)


def _selected_users(request, account, listing):
    users = scoping.portal_users(request.user, account)
    if request.POST.get("all_matching"):
        return listing.matching(request.user, account)
    return users.filter(pk__in=row_ids(request.POST.getlist("ids")))


@console_view
@require_POST
def bulk_action(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None or action not in BULK_ACTIONS:
        return HttpResponseBadRequest("Pick one of the bulk actions.")
    listing = Listing.from_params(request.POST)
    selected = _selected_users(request, account, listing)
    limit = settings.BULK_ACTION_MAX_USERS
    ids = request.POST.getlist("ids")
    all_matching = bool(request.POST.get("all_matching"))
    # Too many ids are refused as they are, without a query over them; "all matching" (maybe
    # every enabled user of a million) is counted only up to one past the limit.
    count = (
        len(ids)
        if len(ids) > limit and not all_matching
        else selected.order_by()[: limit + 1].count()
    )
    context = {
        "account": account,
        "section": "users",
        "action": action,
        "count": count,
        "listing": listing,
        "bulk": True,
        "question": action.ask_many(count),
        "ids": ids,
        "all_matching": all_matching,
    }
    if count == 0:
        context["error"] = "Select at least one user first."
        return _confirm(request, context, status=400)
    if count > limit:
        context["error"] = (
            f"{'More than ' + format(limit, ',') if all_matching else format(count, ',')} users "
            f"selected: a bulk action takes at most {limit:,}. "
            "Narrow the search, or run it in several goes."
        )
        return _confirm(request, context, status=400)
    if not request.POST.get("confirmed"):
        context["who"] = _first_names(selected, count)
        return _confirm(request, context)
    done, failed = _apply_to_each(request, action, selected)
    if done:
        messages.success(request, action.said_many(done))
    for user, reason in failed[:20]:
        # Most reasons name the person already ("Ada Larsen was deleted meanwhile.").
        messages.error(request, reason if user.name in reason else f"{user.name}: {reason}")
    if len(failed) > 20:
        messages.error(request, f"…and {len(failed) - 20} more were not changed.")
    return _back_to_list(request, account, listing)


def _first_names(selected, count):
    """Whom the dialog is about, without reading the whole selection (it may be every user
    matching a search)."""
    return first_names(selected.order_by("name", "pk").values_list("name", flat=True), count)


def _apply_to_each(request, action, selected):
    """Each user in their own transaction: one refusal (no licenses left…) stops nobody else."""
    done, failed = 0, []
    for user in selected.select_related("contact", "role").order_by("name", "pk"):
        try:
            check_may_act_on(request.user, user)
            action.perform(user, request.user, client_ip(request), None)
            done += 1
        except (LifecycleError, PermissionDenied) as error:
            failed.append((user, str(error)))
    return done, failed


@console_view
def user_add(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    form = AddUserForm(
        request.POST if request.method == "POST" else None, person=request.user, account=account
    )
    context = {"account": account, "section": "users", "form": form}
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = lifecycle.invite(
                    account,
                    role=data["role"],
                    by=request.user,
                    contact=data["contact"],
                    name=data["name"],
                    email=data["email"],
                    send_email=data["send_invitation"],
                    ip=client_ip(request),
                )
            except LifecycleError as error:
                form.add_error(None, str(error))
                status = 409
            else:
                messages.success(
                    request,
                    f"{user.name} added and invited."
                    if data["send_invitation"]
                    else f"{user.name} added.",
                )
                return _back_to_list(request, account, Listing.from_params({"tab": "unconfirmed"}))
    if request.htmx:
        response = render(request, "accounts/user_add.html#dialog", context, status=status)
        return retarget(response, "#dialog-slot")
    return render(request, "accounts/user_add.html", context, status=status)


EXPORT_COLUMNS = [
    "Name",
    "Email",
    "Contact ID",
    "User type",
    "Role",
    "State",
    "Account admin",
    "Invited at",
    "Last sign-in",
    "Disabled at",
    "Contact deleted",
]


@console_view
def user_export(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    listing = Listing.from_params(request.GET)
    users = listing.ordered(request.user, account)

    def rows():
        yield EXPORT_COLUMNS
        for user in users.iterator(chunk_size=2000):
            yield neutralise_row(
                [
                    user.name,
                    user.email,
                    user.contact.contact_id if user.contact else "",
                    user.get_user_type_display(),
                    user.role.name if user.role else "",
                    user.get_state_display(),
                    "yes" if user.is_account_admin else "",
                    _iso(user.invited_at),
                    _iso(user.last_login),
                    _iso(user.disabled_at),
                    "yes" if user.contact_deleted else "",
                ]
            )

    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows()), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="{account.slug}-{listing.tab}-users-{stamp}.csv"'
    )
    return response


class _Echo:
    """csv.writer wants a file; streaming wants the line back."""

    def write(self, value):
        return value


def _iso(moment):
    return moment.isoformat(timespec="seconds") if moment else ""
