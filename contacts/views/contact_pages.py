"""A portal account's contacts: the searchable list and one contact's page. Every response to
an HTMX request is a partial of the page's template."""

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django_htmx.http import push_url

from accounts import scoping
from accounts.permissions import console_view
from contacts import crm_accounts
from contacts.contact_listing import PORTAL_FILTERS, SHOWS, ContactListing, show_counts
from contacts.forms import BulkEnableForm
from contacts.views.portal_user_card import render_contact

LIST_TEMPLATE = "contacts/contacts.html"


def list_context(request, account, listing, bulk_form=None):
    counts = show_counts(request.user, account)
    page = listing.page(request.user, account, show_total=counts[listing.show])
    shows = [(show, label, counts[show], listing.show_link(show)) for show, label in SHOWS.items()]
    return {
        "account": account,
        "section": "contacts",
        "listing": listing,
        "shows": shows,
        "page": page,
        "portal_filters": PORTAL_FILTERS,
        "crm_account_names": crm_accounts.suggestions(request.user, account),
        "bulk_form": bulk_form or BulkEnableForm(person=request.user, account=account),
        "bulk_limit": settings.BULK_ENABLE_MAX_CONTACTS,
    }


def render_list(request, context, status=200):
    template = f"{LIST_TEMPLATE}#contact-list" if request.htmx else LIST_TEMPLATE
    return render(request, template, context, status=status)


def list_url(account, listing):
    query = listing.query_string()
    return reverse("contacts", args=[account.slug]) + (f"?{query}" if query else "")


@console_view
def contact_list(request, slug):
    account = scoping.get_portal_account(request.user, slug)
    listing = ContactListing.from_params(request.GET)
    response = render_list(request, list_context(request, account, listing))
    if request.htmx:
        # The address bar shows the list as the listing spells it: no empty filter fields
        # from the search form, nothing that is the default.
        response = push_url(response, list_url(account, listing))
    return response


@console_view
def contact_page(request, slug, contact_pk):
    account = scoping.get_portal_account(request.user, slug)
    return render_contact(request, account, contact_pk)
