"""Response headers Django has no setting for. The Content-Security-Policy itself comes from
django-csp (CONTENT_SECURITY_POLICY in settings)."""

from django.utils.cache import patch_cache_control

# The console and the portal use none of these browser features; denying them means an
# injected script or a framed page cannot ask for them either.
DENIED_FEATURES = (
    "accelerometer",
    "autoplay",
    "browsing-topics",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "publickey-credentials-get",
    "serial",
    "usb",
    "xr-spatial-tracking",
)
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DENIED_FEATURES)


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class NoStoreWhenSignedInMiddleware:
    """A page rendered for a signed-in person (console or portal) holds their data, and a
    download is a copy of it: neither may stay in the browser's cache or a shared proxy, where
    the next person at the machine could open it from history after signing out. A view that
    chose its own Cache-Control (never_cache, an API answer) keeps it; downloads get no-store
    regardless, as they are the data itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        chose_its_own = response.has_header("Cache-Control")
        if is_download(response) or (not chose_its_own and _signed_in(request)):
            patch_cache_control(response, no_store=True)
        return response


def is_download(response):
    return response.get("Content-Disposition", "").lstrip().lower().startswith("attachment")


def _signed_in(request):
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated)
