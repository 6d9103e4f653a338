"""The client's streamed download (a file's content, e.g. an invoice PDF): read as it arrives with
our key, logged without the content, typed errors, one retry of a transient failure."""

import pytest
import responses

from digitalriver import errors
from digitalriver.client import DigitalRiverClient
from digitalriver.models import ApiCall
from tests.digitalriver.test_client import BASE, KEY, FakeTime, refused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("dr_contract_off")]

PDF = b"%PDF-1.4\n" + b"x" * 150_000


@pytest.fixture
def clock():
    return FakeTime()


@pytest.fixture
def make_client(clock):
    def make(**options) -> DigitalRiverClient:
        defaults = {"base_url": BASE, "secret_key": KEY, "timeout": 0.5, "rate_limit": 1000.0, "max_retries": 3}
        return DigitalRiverClient(**{**defaults, "sleep": clock.sleep, "clock": clock.clock, **options})

    return make


@pytest.fixture
def dr():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_the_content_arrives_in_chunks_and_is_not_logged(make_client, dr):
    dr.add(
        responses.GET,
        f"{BASE}/files/f-1/content",
        body=PDF,
        content_type="application/pdf",
        headers={"x-dr-requestid": "r-1", "Content-Length": str(len(PDF))},
    )
    download = make_client().download("/files/f-1/content")
    assert (download.content_type, download.length, download.request_id) == ("application/pdf", len(PDF), "r-1")
    chunks = list(download.chunks())
    assert b"".join(chunks) == PDF and len(chunks) == 3
    request = dr.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"].startswith("application/pdf")
    call = ApiCall.objects.get()
    assert (call.method, call.path, call.status, call.request_id) == ("GET", "/files/f-1/content", 200, "r-1")
    assert call.response_body == f"[application/pdf, {len(PDF)} bytes, streamed: not kept]"


def test_a_404_is_a_typed_error_logged_with_drs_body(make_client, dr):
    body = {"type": "not_found", "errors": [{"code": "not_found", "message": "File not found."}]}
    dr.add(responses.GET, f"{BASE}/files/f-1/content", json=body, status=404)
    with pytest.raises(errors.NotFound):
        make_client().download("/files/f-1/content")
    assert "File not found." in ApiCall.objects.get().response_body


def test_a_transient_failure_is_tried_once_more(make_client, dr, clock):
    dr.add(responses.GET, f"{BASE}/files/f-1/content", status=503, json={"type": "service_unavailable"})
    dr.add(responses.GET, f"{BASE}/files/f-1/content", body=PDF, content_type="application/pdf")
    assert b"".join(make_client().download("/files/f-1/content").chunks()) == PDF
    assert len(clock.sleeps) == 1 and ApiCall.objects.count() == 2


def test_no_connection_is_a_typed_error_and_logged(make_client, dr):
    dr.add(responses.GET, f"{BASE}/files/f-1/content", body=refused())
    with pytest.raises(errors.ConnectionFailed) as failed:
        make_client(max_retries=0).download("/files/f-1/content")
    assert not failed.value.effect_uncertain
    assert ApiCall.objects.get().error_code == "connection_failed"
