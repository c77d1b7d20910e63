"""The orphan fixes for many at once (contacts.orphan_fixes): a confirmation that says how many
and whom, then a page with each user's outcome. Plain forms: the outcome is a page to read,
not a fragment of the list."""

from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import scoping
from accounts.permissions import console_view
from accounts.user_actions import first_names
from contacts import orphan_fixes
from contacts.views.portal_user_card import confirm
from helpers.client_ip import client_ip
from helpers.search_terms import search_term

RESTORE, DISABLE = "restore-crm-account", "disable-all"


@never_cache
@console_view
@require_http_methods(["GET", "POST"])
def orphan_fix(request, slug, fix):
    account = scoping.get_portal_account(request.user, slug)
    params = request.POST if request.method == "POST" else request.GET
    crm_account = search_term(params, "crm_account")
    if fix == RESTORE:
        selected = orphan_fixes.orphans_of_crm_account(request.user, account, crm_account)
    elif fix == DISABLE:
        selected = orphan_fixes.orphans_to_disable(request.user, account)
    else:
        raise Http404
    users, more_left = orphan_fixes.first_of_run(selected)
    context = _confirmation(request, account, fix, crm_account, users, more_left)
    if not users:
        context.update(consequences=[], nothing_to_do=True)
        context["error"] = (
            f"No orphaned users have a deleted contact in “{crm_account}”: pick a CRM account "
            "from the list."
            if fix == RESTORE
            else "No orphaned user is enabled or unconfirmed: there is nobody to disable."
        )
        return confirm(request, context, status=400 if request.method == "POST" else 200)
    if request.method == "GET" or not request.POST.get("confirmed"):
        return confirm(request, context)
    ip = client_ip(request)
    if fix == RESTORE:
        outcomes = orphan_fixes.restore_contacts(request.user, users, ip=ip)
    else:
        outcomes = orphan_fixes.disable_users(request.user, users, ip=ip)
    done = sum(outcome.done for outcome in outcomes)
    return render(
        request,
        "contacts/orphan_fix_outcome.html",
        {
            "account": account,
            "section": "orphans",
            "title": context["title"],
            "outcomes": outcomes,
            "done": done,
            "refused": len(outcomes) - done,
            "more_left": more_left,
            "again_url": f"{context['post_url']}?{urlencode(context['hidden'])}",
            "fix": fix,
            "crm_account": crm_account,
        },
    )


def _confirmation(request, account, fix, crm_account, users, more_left):
    count = f"{len(users):,}{'+' if more_left else ''}"
    them = f"{count} orphaned user{'s' if len(users) != 1 or more_left else ''}"
    who = first_names([user.name for user in users], len(users))
    if fix == RESTORE:
        title = f"Restore the deleted contacts of {crm_account}?"
        lines = [
            f"{them} of {crm_account}: {who}. Their CRM contacts are restored.",
            "Enabled users can sign in again; disabled and unconfirmed users stay as they are.",
        ]
        button, danger = "Restore contacts", False
    else:
        title = "Disable every orphaned user?"
        lines = [
            f"{them} to disable (enabled or unconfirmed): {who}.",
            "Their links stop working and their emails are not sent. Enable them again once "
            "their contact is back.",
        ]
        button, danger = "Disable users", True
    if more_left:
        lines.append(f"A run takes {len(users):,} users: run it again for the rest.")
    return {
        "account": account,
        "section": "orphans",
        "title": title,
        "consequences": lines,
        "post_url": reverse("orphan-fix", args=[account.slug, fix]),
        "hidden": [("crm_account", crm_account)] if fix == RESTORE else [],
        "cancel_url": reverse("orphaned-users", args=[account.slug]),
        "button": button,
        "danger": danger,
    }
