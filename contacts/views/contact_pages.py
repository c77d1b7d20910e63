"""A portal account's contacts: the searchable list and one contact's page. Every response to
an HTMX request is a partial of the page's template."""

from django.shortcuts import render

from accounts import scoping
from accounts.permissions import console_view
from contacts.contact_listing import SHOWS, ContactListing, show_counts
from contacts.views.portal_user_card import render_contact

LIST_TEMPLATE = "contacts/contacts.html"


@console_view
def contact_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    listing = ContactListing.from_params(request.GET)
    counts = show_counts(request.user, account)
    page = listing.page(request.user, account, show_total=counts[listing.show])
    shows = [
        (show, label, counts[show], listing.query_string(show=show, page=1))
        for show, label in SHOWS.items()
    ]
    context = {
        "account": account,
        "section": "contacts",
        "listing": listing,
        "shows": shows,
        "page": page,
    }
    template = f"{LIST_TEMPLATE}#contact-list" if request.htmx else LIST_TEMPLATE
    return render(request, template, context)


@console_view
def contact_page(request, slug, contact_pk):
    account = scoping.get_portal_account(request.user, slug)
    return render_contact(request, account, contact_pk)
