"""What the CRM-account filter field of the Users and Contacts pages suggests as the person types:
the account's CRM account names that contain the text, as the options of a <datalist>. The
pages render the first names with the field, so it suggests without JavaScript too; the search
runs over the account's few CRM account names (contacts.crm_accounts), never its contacts."""

from django.shortcuts import render

from accounts import scoping
from accounts.permissions import console_view
from contacts import crm_accounts
from helpers.search_terms import search_term


@console_view
def crm_account_picker(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    text = search_term(request.GET, "crm")
    if text:
        names = crm_accounts.names_containing(request.user, account, text)
    else:
        names = crm_accounts.suggestions(request.user, account)
    return render(request, "contacts/crm_account_options.html", {"crm_account_names": names})
