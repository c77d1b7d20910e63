"""The console's contact pages: the list, a contact with its Portal user card, deleting and
restoring a contact, and the orphaned users it leaves behind."""
