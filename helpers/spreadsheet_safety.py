"""Cells we write into CSV files people open in a spreadsheet. A value starting with one of
these characters would be run as a formula (CSV injection), so it gets a leading apostrophe,
which spreadsheets show as text."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def neutralise_row(values):
    return [neutralise(value) for value in values]
