"""The contact picker: what Add user's contact field suggests as the person types (a name, an
email, a contact id or a Salesforce id), as the options of a <datalist>, so the browser offers
them under the field. Without JavaScript the field takes a contact id typed by hand."""

from django.shortcuts import render

from accounts import scoping
from accounts.permissions import console_view
from contacts.contact_listing import search_condition
from helpers.search_paging import suggestions
from helpers.search_terms import search_term

SHORTEST_TERM = 2


@console_view
def contact_picker(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    term = search_term(request.GET, "contact_id") or search_term(request.GET)
    contacts = []
    if len(term) >= SHORTEST_TERM:
        matching = (
            scoping.contacts(request.user, account)
            .live()
            .filter(user__isnull=True)  # a contact with a portal user cannot get another
            .filter(search_condition(term))
        )
        contacts = suggestions(matching, lambda contact: (contact.name.lower(), contact.pk))
    return render(request, "contacts/contact_picker.html", {"contacts": contacts})
