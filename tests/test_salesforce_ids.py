import pytest

from contacts.salesforce_ids import InvalidSalesforceId, to_18


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        ("a01M00000062mPg", "a01M00000062mPgIAI"),  # Salesforce's documented example
        ("00384yRnBUbHoWC", "00384yRnBUbHoWCA00"),  # from the shared sample contacts
        ("003gFb51yBMWXaS", "003gFb51yBMWXaSQQX"),
        ("001000000000000", "001000000000000AAA"),  # no capitals: all-zero bits
        ("ABCDEABCDEABCDE", "ABCDEABCDEABCDE555"),  # all capitals: all bits set
    ],
)
def test_15_character_ids_get_the_checksum_suffix(id15, id18):
    assert to_18(id15) == id18


def test_18_character_ids_are_kept_when_the_checksum_matches():
    assert to_18("a01M00000062mPgIAI") == "a01M00000062mPgIAI"
    assert to_18(" a01M00000062mPgiai ") == "a01M00000062mPgIAI"


@pytest.mark.parametrize(
    "bad", ["", "short", "a01M00000062mPg!", "a01M00000062mPgIA", "a01M00000062mPgZZZ"]
)
def test_other_values_are_refused_with_a_plain_message(bad):
    with pytest.raises(InvalidSalesforceId, match="Salesforce id|checksum"):
        to_18(bad)
