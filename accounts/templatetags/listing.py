from django import template

register = template.Library()


@register.filter
def sort_link(listing, key):
    return listing.sort_link(key)


@register.filter
def page_link(listing, number):
    return listing.query_string(page=number)


@register.filter
def tab_link(listing, tab):
    return listing.tab_link(tab)
