from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import tokens
from accounts.errors import InvalidToken
from accounts.models import LoginToken, TokenPurpose
from tests.factories import PortalUserFactory


@pytest.fixture
def user(account, partner_role):
    return PortalUserFactory(portal_account=account, role=partner_role)


def test_only_a_hash_is_stored(user):
    secret = tokens.issue(user, TokenPurpose.MAGIC_LINK)
    stored = LoginToken.objects.get()
    assert len(secret) >= 40
    assert secret not in stored.token_hash
    assert not LoginToken.objects.filter(token_hash=secret).exists()


def test_a_token_works_once(user, account):
    secret = tokens.issue(user, TokenPurpose.MAGIC_LINK, target="courses")
    used = tokens.redeem(secret, TokenPurpose.MAGIC_LINK, account)
    assert (used.user, used.target) == (user, "courses")
    with pytest.raises(InvalidToken, match="already been used"):
        tokens.redeem(secret, TokenPurpose.MAGIC_LINK, account)


def test_an_expired_token_fails(user, account):
    secret = tokens.issue(user, TokenPurpose.PASSWORD_RESET)
    LoginToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.redeem(secret, TokenPurpose.PASSWORD_RESET, account)


def test_lifetimes_come_from_settings(user, settings):
    tokens.issue(user, TokenPurpose.ACTIVATION)
    token = LoginToken.objects.get()
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(days=7), abs=timedelta(seconds=5)
    )


def test_a_token_is_bound_to_its_purpose_and_account(user, account, other_account):
    secret = tokens.issue(user, TokenPurpose.ACTIVATION)
    with pytest.raises(InvalidToken):
        tokens.redeem(secret, TokenPurpose.MAGIC_LINK, account)
    with pytest.raises(InvalidToken):
        tokens.redeem(secret, TokenPurpose.ACTIVATION, other_account)
    tokens.redeem(secret, TokenPurpose.ACTIVATION, account)


def test_tampered_tokens_fail(user, account):
    secret = tokens.issue(user, TokenPurpose.MAGIC_LINK)
    for tampered in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret[:20], "", "x" * 500):
        with pytest.raises(InvalidToken):
            tokens.redeem(tampered, TokenPurpose.MAGIC_LINK, account)


def test_a_new_token_kills_the_older_ones_of_its_purpose_only(user, account):
    first_link = tokens.issue(user, TokenPurpose.MAGIC_LINK)
    reset = tokens.issue(user, TokenPurpose.PASSWORD_RESET)
    second_link = tokens.issue(user, TokenPurpose.MAGIC_LINK)
    with pytest.raises(InvalidToken, match="replaced"):
        tokens.redeem(first_link, TokenPurpose.MAGIC_LINK, account)
    tokens.redeem(second_link, TokenPurpose.MAGIC_LINK, account)
    tokens.redeem(reset, TokenPurpose.PASSWORD_RESET, account)


def test_one_time_codes_are_six_digits_and_single_use(user):
    code = tokens.issue_code(user)
    assert len(code) == 6
    assert code.isdigit()
    assert tokens.redeem_code(user, code).user == user
    with pytest.raises(InvalidToken):
        tokens.redeem_code(user, code)


def test_one_time_codes_allow_limited_attempts(user, settings):
    settings.LOGIN_CODE_MAX_ATTEMPTS = 3
    code = tokens.issue_code(user)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(3):
        with pytest.raises(InvalidToken):
            tokens.redeem_code(user, wrong)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.redeem_code(user, code)  # the right code is dead after too many wrong ones


def test_a_code_is_bound_to_its_user(user, account, partner_role):
    other = PortalUserFactory(portal_account=account, role=partner_role)
    code = tokens.issue_code(user)
    tokens.issue_code(other)
    with pytest.raises(InvalidToken):
        tokens.redeem_code(other, code)
