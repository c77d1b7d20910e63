"""Signatures as in the Standard Webhooks specification (standardwebhooks.com), so that a
receiver may use its libraries: the headers webhook-id, webhook-timestamp (Unix seconds) and
webhook-signature, "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>", keyed with the
base64-decoded part of the "whsec_..." secret. Several signatures are separated by spaces
(during a secret rotation, one per live secret). Signing the id and the timestamp with the body
stops a captured request from being replayed later or under another id."""

import base64
import hashlib
import hmac

from webhooks.models import SECRET_PREFIX


def key_of(secret):
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret, message_id, timestamp, body):
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets, message_id, timestamp, body):
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }
