"""The sandbox's own signer (it must not share code with the client's verifier).

The first form DR documents (order-management/events-and-webhooks-1/webhooks/digital-river-signature.md
in the DigitalRiver/GitBook repository, branch Digital-River-API):
`"<unix ts>, <base64(HMAC-SHA256(secret, "<ts>." + raw body))>"`.
"""

import base64
import hashlib
import hmac
import time


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode("utf-8"), ts.encode("ascii") + b"." + body, hashlib.sha256).digest()
    return f"{ts}, {base64.b64encode(digest).decode('ascii')}"
