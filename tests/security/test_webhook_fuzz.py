"""Hypothesis against POST /webhooks/digitalriver/: whatever arrives, the answer is never a 500, and a
row is stored only for a correctly signed JSON object with a string id and type, once.

tests/digitalriver/test_inbox.py lists the known bad deliveries one by one; this file generates them:
bodies, headers and signatures in every shape, and checks the endpoint's contract on each.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
import responses
from django.conf import settings as django_settings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from digitalriver import registry, signature
from digitalriver.client import reset_client
from digitalriver.models import WebhookEvent

URL = "/webhooks/digitalriver/"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

pytestmark = pytest.mark.django_db


# --- the oracle ----------------------------------------------------------------------------------


def same_json(stored, sent) -> bool:
    if isinstance(sent, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == sent.keys()
            and all(same_json(stored[key], value) for key, value in sent.items())
        )
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(same_json, stored, sent))
    if isinstance(sent, float) and not isinstance(stored, bool) and isinstance(stored, int | float):
        return float(stored) == sent
    return stored == sent


def storable_envelope(body: bytes) -> dict | None:
    """The parsed event if the body is a UTF-8 JSON object with a usable string id and type, else None.

    The endpoint may still refuse such a body (NaN, NUL, nesting): this is what it must *not* accept
    without, not the whole rule."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    event_id, event_type = payload.get("id"), payload.get("type")
    if not (isinstance(event_id, str) and event_id.strip() and isinstance(event_type, str) and event_type.strip()):
        return None
    return payload


def post(client, body: bytes, header: str | None, content_type: str = "application/json", **extra):
    if header is not None:
        extra["HTTP_DIGITALRIVER_SIGNATURE"] = header
    return client.post(URL, data=body, content_type=content_type, **extra)


#: DR sends JSON, but a proxy or an attacker may say otherwise; the body is read raw either way.
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "",
    ]
)


def assert_refused(response, status=400):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    reason = response.json()["error"]
    assert isinstance(reason, str) and reason
    assert WebhookEvent.objects.count() == 0
    return reason


def fresh():
    WebhookEvent.objects.all().delete()  # hypothesis runs every example inside the test's one transaction


def secret() -> str:
    return django_settings.DR_WEBHOOK_SECRETS[0]


def digest(body: bytes, timestamp: int | str, key: str | None = None) -> bytes:
    return hmac.new((key or secret()).encode(), f"{timestamp}.".encode() + body, hashlib.sha256).digest()


# --- bodies --------------------------------------------------------------------------------------


def json_trees(text):
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)),
        max_leaves=20,
    )


json_values = json_trees(st.text(max_size=30))  # NUL included: refused with a reason
clean_values = json_trees(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30))
ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=120))
id_like = st.one_of(
    ids, st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text(), max_size=2)
)


@st.composite
def envelopes(draw, *, clean: bool = False):
    """A DR-shaped envelope; unless clean, id or type may be missing, blank, the wrong type or too long."""
    event = {
        "id": draw(st.uuids().map(str)) if clean else draw(id_like),
        "type": draw(st.sampled_from(["order.accepted", "test.fuzz.unknown", "fulfillment_order.shipped"]))
        if clean
        else draw(id_like),
        "data": {"object": draw(clean_values if clean else json_values)},
        "liveMode": draw(st.booleans()),
        "createdTime": draw(st.sampled_from(["2026-11-20T10:00:00Z", "yesterday", "2026-13-45T99:99:99Z", ""])),
    }
    if not clean:
        for key in draw(st.lists(st.sampled_from(["id", "type", "data"]), max_size=2, unique=True)):
            del event[key]
    return event


def depth(n: int) -> str:
    return "[" * n + "]" * n


def raw_envelope(data: str) -> st.SearchStrategy[bytes]:
    """An otherwise valid envelope whose data is the given raw JSON text (not expressible as a dict)."""
    return st.uuids().map(lambda u: f'{{"id": "{u}", "type": "test.fuzz.unknown", "data": {data}}}'.encode())


nasty_data = st.one_of(
    st.integers(min_value=1, max_value=400).map(depth),  # deep but parseable
    st.sampled_from([depth(5000), depth(60_000)]),  # past the limit and past the parser's stack
    st.integers(min_value=300, max_value=20_000).map(lambda n: "1" * n),  # huge integers (int() refuses > 4300)
    st.integers(min_value=300, max_value=2_000).map(lambda n: "1e" + "9" * (n // 100)),  # float overflow
    st.sampled_from(["NaN", "-Infinity", "Infinity", "1e400", "-1e999"]),
    st.sampled_from(['"a\\u0000b"', '{"a\\u0000": 1}', '"\\ud800"', '"\\udfff\\ud800"', '{"\\udc00": 0}']),
    st.sampled_from(['"\\ud83d\\ude00"', '"\\u00e9"']),  # a valid surrogate pair and an escape: fine
)


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    envelopes().map(lambda e: json.dumps(e).encode()),
    envelopes(clean=True).map(lambda e: json.dumps(e).encode()),
    nasty_data.flatmap(raw_envelope),
    # JSON-ish text cut or damaged somewhere
    st.tuples(envelopes(clean=True).map(json.dumps), st.integers(min_value=0, max_value=200)).map(
        lambda pair: pair[0][: pair[1]].encode()
    ),
    st.tuples(envelopes(clean=True).map(json.dumps), st.binary(min_size=1, max_size=4)).map(
        lambda pair: pair[0].encode()[:-1] + pair[1] + b"}"
    ),
    st.sampled_from([b"", b"null", b"[]", b'"x"', b"0", b"{}", b"\xef\xbb\xbf{}", b"\x00", b"{" * 10_000]),
)


# --- headers -------------------------------------------------------------------------------------

# What a WSGI server can hand us: the header's bytes decoded as latin-1, without CR or LF.
header_text = st.text(alphabet=st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=200)
timestamps = st.one_of(
    st.integers(min_value=0, max_value=10**13).map(str),
    st.sampled_from(["", "-1", "1.5", "0x10", "\u00b9\u00b2", "9" * 50, " 1 "]),
)
random_digests = st.binary(min_size=32, max_size=32)
encodings = st.sampled_from(
    [
        lambda d: base64.b64encode(d).decode(),
        lambda d: base64.b64encode(d).decode().rstrip("="),
        lambda d: base64.urlsafe_b64encode(d).decode(),
        lambda d: d.hex(),
        lambda d: d.hex().upper(),
    ]
)
forms = st.sampled_from(
    [
        lambda ts, sigs: ", ".join([ts, *sigs]),
        lambda ts, sigs: ",".join([f"t={ts}", *(f"v0={s}" for s in sigs)]),
        lambda ts, sigs: " , ".join([*(f"v1={s}" for s in sigs), f"t={ts}"]),
    ]
)


@st.composite
def unsigned_headers(draw):
    """Headers that cannot verify: missing, garbage, or well formed with a signature nobody made."""
    kind = draw(st.sampled_from(["missing", "text", "formed", "many"]))
    if kind == "missing":
        return None
    if kind == "text":
        return draw(header_text)
    ts = draw(st.one_of(timestamps, st.just(str(int(time.time())))))
    count = draw(st.integers(min_value=1, max_value=3) if kind == "formed" else st.integers(min_value=9, max_value=60))
    encode = draw(encodings)
    sigs = [encode(draw(random_digests)) for _ in range(count)]
    return draw(forms)(ts, sigs)


# --- the properties -------------------------------------------------------------------------------


@FUZZ
@given(body=bodies, header=unsigned_headers(), content_type=content_types)
def test_unsigned_deliveries_are_refused_and_store_nothing(client, body, header, content_type):
    fresh()
    assert_refused(post(client, body, header, content_type))


@FUZZ
@given(
    body=envelopes(clean=True).map(lambda e: json.dumps(e).encode()),
    offset=st.one_of(st.integers(min_value=301, max_value=10**9), st.integers(min_value=-(10**9), max_value=-301)),
    encode=encodings,
    form=forms,
)
def test_correctly_signed_but_stale_or_future_is_refused(client, settings, body, offset, encode, form):
    settings.DR_WEBHOOK_TOLERANCE_SECONDS = 300
    fresh()
    ts = int(time.time()) - offset  # a positive offset is in the past
    assume(ts >= 0)
    reason = assert_refused(post(client, body, form(str(ts), [encode(digest(body, ts))])))
    assert ("too old" if offset > 0 else "in the future") in reason


@FUZZ
@given(body=bodies, key=st.text(min_size=1, max_size=40))
def test_signed_with_another_secret_is_refused(client, body, key):
    assume(key not in django_settings.DR_WEBHOOK_SECRETS)
    fresh()
    ts = int(time.time())
    header = f"{ts}, {base64.b64encode(digest(body, ts, key)).decode()}"
    assert "does not match" in assert_refused(post(client, body, header))


@FUZZ
@given(body=bodies)
def test_signed_tampered_body_is_refused(client, body):
    fresh()
    header = signature.sign(secret(), body)
    tampered = body + b" " if body[-1:] != b" " else body[:-1]
    assert "does not match" in assert_refused(post(client, tampered, header))


@FUZZ
@given(body=bodies, content_type=content_types)
def test_validly_signed_body_is_stored_once_exactly_when_it_is_an_event(client, body, content_type):
    """The whole contract on a correctly signed delivery: 202 and one row (then 200 and no change) for
    an object with a string id and type, 400 and nothing stored otherwise, never a 500."""
    fresh()
    response = post(client, body, signature.sign(secret(), body), content_type)
    envelope = storable_envelope(body)
    if response.status_code != 202:
        assert_refused(response)
        return
    assert envelope is not None, f"accepted a body that is not an event: {body[:200]!r}"
    row = WebhookEvent.objects.get()
    assert row.dr_event_id == envelope["id"]
    assert row.type == envelope["type"]
    assert row.body == body.decode("utf-8")  # the raw body is the record, byte for byte
    # The parsed copy is a convenience: PostgreSQL's jsonb stores 4.2e16 as the integer it equals.
    assert same_json(row.payload, envelope)
    assert response.json() == {"id": envelope["id"], "status": "accepted"}
    again = post(client, body, signature.sign(secret(), body), content_type)
    assert again.status_code == 200
    assert again.json() == {"id": envelope["id"], "status": "duplicate"}
    assert WebhookEvent.objects.count() == 1


@FUZZ
@given(event=envelopes(clean=True))
def test_a_clean_event_is_always_accepted(client, event):
    """The oracle's other half: the generators above do produce acceptable events, and those pass."""
    fresh()
    body = json.dumps(event).encode()
    response = post(client, body, signature.sign(secret(), body))
    assert response.status_code == 202, response.content
    assert WebhookEvent.objects.filter(dr_event_id=event["id"]).count() == 1


@FUZZ
@given(
    event=envelopes(clean=True),
    encode=encodings,
    form=forms,
    decoys=st.lists(random_digests, max_size=10),
    position=st.integers(min_value=0, max_value=10),
    skew=st.integers(min_value=-290, max_value=290),
)
def test_both_forms_every_encoding_and_decoys_up_to_the_limit(client, event, encode, form, decoys, position, skew):
    """A good signature among others verifies whatever its form, encoding and place, as long as the
    header names at most MAX_SIGNATURES of them; past that it is refused as guessing."""
    fresh()
    body = json.dumps(event).encode()
    ts = int(time.time()) + skew
    sigs = [encode(d) for d in decoys]
    sigs.insert(min(position, len(sigs)), encode(digest(body, ts)))
    response = post(client, body, form(str(ts), sigs))
    if len(sigs) <= signature.MAX_SIGNATURES:
        assert response.status_code == 202, response.content
        assert WebhookEvent.objects.count() == 1
    else:
        assert "too many" in assert_refused(response)


@FUZZ
@given(
    event=envelopes(clean=True),
    extra=st.dictionaries(
        st.sampled_from(["HTTP_X_TRACE", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_ACCEPT_LANGUAGE"]),
        header_text,
        max_size=4,
    ),
    credential=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=40),
)
def test_any_header_values_are_stored_with_credentials_redacted(client, event, extra, credential):
    """Odd header values (latin-1, NUL, control characters) never break the insert; the credentials a
    proxy may add (Authorization, Cookie, an API token) never reach the stored headers."""
    assume(not any(credential in value for value in extra.values()))
    fresh()
    body = json.dumps(event).encode()
    secrets_sent = {
        "HTTP_AUTHORIZATION": f"Bearer sk_live_{credential}",
        "HTTP_COOKIE": f"sessionid={credential}",
        "HTTP_X_API_TOKEN": credential,
        "HTTP_X_WEBHOOK_SECRET": credential,
    }
    response = post(client, body, signature.sign(secret(), body), **extra, **secrets_sent)
    assert response.status_code == 202, response.content
    row = WebhookEvent.objects.get()
    assert credential not in json.dumps(row.headers)
    stored = {name.lower(): value for name, value in row.headers.items()}
    for name in ("authorization", "cookie", "x-api-token", "x-webhook-secret"):
        assert stored[name] == "[redacted]"
    for meta, value in extra.items():
        assert stored[meta[5:].replace("_", "-").lower()] == value.replace("\x00", "")


# --- processing what was accepted --------------------------------------------------------------------


@settings(FUZZ, max_examples=60)
@given(
    event_type=st.sampled_from(sorted(registry._event_handlers) or ["order.accepted"]),
    obj=st.one_of(clean_values, st.dictionaries(st.sampled_from(["id", "orderId", "items", "state"]), clean_values)),
)
def test_garbage_of_a_handled_type_ends_processed_failed_or_ignored(
    client, settings, django_capture_on_commit_callbacks, event_type, obj
):
    """A signed event of a type we handle whose object is nonsense: the row ends in a final state with a
    reason when it failed; nothing escapes the job. DR is not reachable (every call is refused)."""
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.DR_RATE_LIMIT_PER_SECOND = 10_000
    reset_client()
    fresh()
    event = {"id": f"evt-{time.monotonic_ns()}", "type": event_type, "data": {"object": obj}}
    body = json.dumps(event).encode()
    with responses.RequestsMock(assert_all_requests_are_fired=False), django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, signature.sign(secret(), body))
    assert response.status_code == 202, response.content
    row = WebhookEvent.objects.get()
    assert row.state in (WebhookEvent.State.PROCESSED, WebhookEvent.State.FAILED, WebhookEvent.State.IGNORED)
    if row.state == WebhookEvent.State.FAILED:
        assert row.error
