"""What the From and Reply-To headers of a portal account's emails say, and the DNS records
its owner publishes so that mail from its own domain is accepted (shown as text to copy:
nothing is looked up over the network)."""

from dataclasses import dataclass
from email.utils import formataddr, parseaddr

from django.conf import settings

from mail import brand, logos
from mail.models import SenderIdentity


@dataclass(frozen=True)
class Sender:
    from_header: str
    reply_to: list
    accent: str = brand.DEFAULT_ACCENT
    logo_url: str = ""  # absolute: emails point at it


def _default_from():
    return parseaddr(settings.DEFAULT_FROM_EMAIL)


def sender_of(account):
    """The headers, colour and logo of `account`'s emails (two queries; the batch sender keeps
    it per account)."""
    identity = SenderIdentity.objects.filter(portal_account=account).first()
    logo_url = logos.url_of(account.slug, logos.digest_of(account))
    default_name, default_address = _default_from()
    if identity is None:
        return Sender(settings.DEFAULT_FROM_EMAIL, [], logo_url=logo_url)
    # formataddr quotes a name with commas or quotes; a name cannot hold a line break
    # (mail.forms refuses it, and the mail library would refuse the header).
    name = " ".join(identity.from_name.split()) or default_name
    address = identity.from_email or default_address
    return Sender(
        formataddr((name, address)),
        [identity.reply_to] if identity.reply_to else [],
        identity.accent_color or brand.DEFAULT_ACCENT,
        logo_url,
    )


@dataclass(frozen=True)
class DnsRecord:
    kind: str
    name: str
    value: str
    why: str


def dns_records(from_email):
    """The records the owner of the sender address's domain publishes: SPF lets the MSSP's mail
    servers send for the domain, the DKIM CNAME points at the key the MSSP signs with."""
    domain = from_email.rpartition("@")[2].lower()
    if not domain:
        return []
    selector = settings.MAIL_DKIM_SELECTOR
    return [
        DnsRecord(
            "TXT",
            domain,
            f"v=spf1 include:{settings.MAIL_SPF_INCLUDE} ~all",
            "SPF: merge the include into the domain's existing v=spf1 record if it has one.",
        ),
        DnsRecord(
            "CNAME",
            f"{selector}._domainkey.{domain}",
            settings.MAIL_DKIM_CNAME_TARGET.format(selector=selector, domain=domain),
            "DKIM: the public key of the key the emails are signed with.",
        ),
    ]
