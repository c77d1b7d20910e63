"""What people type into a search box, made safe to put in a query: trimmed, capped, and without
control characters (PostgreSQL refuses a NUL in a text value, which would be a 500)."""

MAX_LENGTH = 200


def search_term(params, name="q"):
    text = params.get(name, "")
    text = "".join(char for char in text if char.isprintable() or char == " ")
    return text.strip()[:MAX_LENGTH]
