"""The contacts page's bulk action "Enable as portal users": ask (the names, the role and what
it costs in licenses), then give each selected contact a portal user and show each one's
outcome above the list. A plain form post without JavaScript, a <dialog> with it."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_POST
from django_htmx.http import push_url, retarget

from accounts import scoping
from accounts.permissions import console_view
from accounts.user_actions import first_names
from contacts import bulk_enable
from contacts.contact_listing import ContactListing
from contacts.forms import BulkEnableForm
from contacts.views.contact_pages import list_context, list_url, render_list
from helpers.client_ip import client_ip
from helpers.row_ids import row_ids

CONFIRM_TEMPLATE = "contacts/bulk_enable_confirm.html"


def _ids(request):
    """The ticked contacts' ids; anything that is not one is dropped (a guess at another
    account's contact is dropped later, by the scoped query, and never named)."""
    return row_ids(request.POST.getlist("ids"))


def _selection(request, account, listing, limit):
    """(the selected contacts' ids, up to limit + 1; whether "all matching" was asked)."""
    if request.POST.get("all_matching"):
        matching = listing.matching(request.user, account)
        return list(matching.order_by().values_list("pk", flat=True)[: limit + 1]), True
    ids = _ids(request)
    if len(ids) > limit:  # refused as they are, without a query over them
        return ids, False
    scoped = scoping.contacts(request.user, account).filter(pk__in=ids)
    return list(scoped.values_list("pk", flat=True)), False


def _confirm(request, context, status=200):
    if request.htmx:
        response = render(request, f"{CONFIRM_TEMPLATE}#dialog", context, status=status)
        return retarget(response, "#dialog-slot")
    return render(request, CONFIRM_TEMPLATE, context, status=status)


@console_view
@require_POST
def enable_contacts(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    listing = ContactListing.from_params(request.POST)
    limit = settings.BULK_ENABLE_MAX_CONTACTS
    ids, all_matching = _selection(request, account, listing, limit)
    form = BulkEnableForm(request.POST, person=request.user, account=account)
    count = len(ids)
    context = {
        "account": account,
        "section": "contacts",
        "listing": listing,
        "form": form,
        "count": count,
        "ids": ids,
        "all_matching": all_matching,
        "question": f"Enable {count:,} contact{'s' if count != 1 else ''} as portal users?",
    }
    if count == 0:
        context["error"] = "Select at least one contact first."
        return _confirm(request, context, status=400)
    if count > limit:
        context["error"] = (
            f"{'More than ' if all_matching else ''}{limit:,} contacts selected: enabling as "
            f"portal users takes at most {limit:,} at a time. Narrow the search or filters (for "
            "example “No portal user”), or use a CSV import for more."
        )
        return _confirm(request, context, status=400)
    if not form.is_valid():
        return _confirm(request, context, status=400)
    role = form.cleaned_data["role"]
    selected = scoping.contacts(request.user, account).filter(pk__in=ids)
    if not request.POST.get("confirmed"):
        return _confirm(request, {**context, **_preview(account, selected, role, count)})
    outcomes = bulk_enable.enable(account, selected, role, by=request.user, ip=client_ip(request))
    counts = bulk_enable.summary(outcomes)
    page = list_context(request, account, listing, bulk_form=form)
    page["outcome"] = {"role": role, "rows": outcomes, "counts": counts}
    # Nothing created and something refused (licenses, a rule): the request changed nothing.
    status = 409 if counts["failed"] and not counts["created"] else 200
    response = render_list(request, page, status=status)
    if request.htmx:
        response = push_url(response, list_url(account, listing))
    return response


def _preview(account, selected, role, count):
    """What the confirmation tells before anything changes: the first names, who will be
    skipped, and the role's licenses (from the account's counters)."""
    rows = list(
        bulk_enable.with_user_flag(selected)
        .order_by("name", "pk")
        .values_list("name", "has_user", "deleted_at")
    )
    names = [name for name, _has_user, _deleted in rows[:3]]
    # In the order bulk_enable.enable gives the reasons: a deleted contact first.
    deleted = sum(1 for _name, _has_user, deleted_at in rows if deleted_at)
    with_user = sum(1 for _name, has_user, deleted_at in rows if has_user and not deleted_at)
    wanted = len(rows) - with_user - deleted
    return {
        "who": first_names(names, count),
        "role": role,
        "with_user": with_user,
        "deleted": deleted,
        "wanted": wanted,
        "seats": bulk_enable.seats(account, role, wanted) if wanted else None,
    }
