"""The code an authenticator app shows now (RFC 6238, as django-otp's TOTPDevice checks it):
the load bench knows each admin's key as their phone would."""

import hashlib
import hmac
import struct
import time


def totp(key_hex, at=None, step=30, digits=6):
    counter = int((at or time.time()) // step)
    digest = hmac.new(bytes.fromhex(key_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)
