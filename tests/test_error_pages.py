"""Errors a person can meet in the console look like the console and say what to do."""

from django.test import Client, override_settings


def test_a_missing_page_is_a_styled_404(admin_client):
    page = admin_client.get("/accounts/no-such-account/")
    assert page.status_code == 404
    assert "This page is not here" in page.content.decode()
    assert 'class="topbar"' in page.content.decode()


def test_a_forbidden_page_says_why(account_admin_client, account):
    page = account_admin_client.get(f"/accounts/{account.slug}/settings/")
    assert page.status_code == 403
    assert "Only MSSP admins" in page.content.decode()


def test_the_api_still_answers_json_404s(client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


@override_settings(DEBUG=False, ROOT_URLCONF="tests.broken_urls")
def test_a_server_error_is_a_styled_500():
    client = Client(raise_request_exception=False)
    page = client.get("/")
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.content.decode()
