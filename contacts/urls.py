"""Contacts of a portal account in the console, and its orphaned users."""

urlpatterns = []
