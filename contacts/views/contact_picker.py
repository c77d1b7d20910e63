"""The contact picker: what Add user's contact field suggests as the person types (a name, an
email, a contact id or a Salesforce id), as the options of a <datalist>, so the browser offers
them under the field, and under it whom the contact id in the field names once one is picked.
Without JavaScript the field takes a contact id typed by hand."""

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
    contacts, picked = [], None
    if len(term) >= SHORTEST_TERM:
        free = (
            scoping.contacts(request.user, account)
            .live()
            .filter(user__isnull=True)  # a contact with a portal user cannot get another
        )
        contacts = suggestions(
            free.filter(search_condition(term)),
            lambda contact: (contact.name.lower(), contact.pk),
        )
        # A picked option leaves its contact id in the field: say whom it names.
        picked = free.filter(contact_id=term).first()
    context = {"contacts": contacts, "picked": picked}
    return render(request, "contacts/contact_picker.html", context)
