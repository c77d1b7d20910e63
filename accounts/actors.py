"""Who acts, as the scoping and permission rules see them. A console person is a User. Another
kind of actor (the api's tokens) is registered here by the app that defines it, so that accounts
never imports that app: a registered actor acts for one portal account only, and there on every
user, as MSSP staff do (MSSP admins are the ones who issue such actors)."""

from operator import attrgetter

_account_id_of = {}


def register_account_actor(actor_class, *, account_id_of=attrgetter("portal_account_id")):
    """Instances of `actor_class` act for the portal account whose id `account_id_of` gives."""
    _account_id_of[actor_class] = account_id_of


def is_account_actor(person):
    return type(person) in _account_id_of


def account_id_of(actor):
    """The one portal account a registered actor acts for."""
    return _account_id_of[type(actor)](actor)
