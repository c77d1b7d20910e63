from django.conf import settings


def client_ip(request):
    """Where a request came from (audit log, sign-in throttling). Behind proxies REMOTE_ADDR is
    the nearest proxy; each of the TRUSTED_PROXY_HOPS proxies appends the address it saw to
    X-Forwarded-For, so the client is that many entries from the right. Entries further left
    are whatever the client sent and are never trusted."""
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or None
