"""What the document and chargeback tests share: DR mocked at the client's edge with `responses`,
a PDF as DR would stream it, and a guard that fails a test if anything is written to disk."""

import builtins
import io
import os
import tempfile

import pytest
import responses

from tests.conftest import fixture

DR = "https://dr.documents.test"
SECRET = "sk_test_documents_0123456789abcdef"
INVOICE_EVENT = fixture("event_order_invoice_created.json")
CREDIT_MEMO_EVENT = fixture("event_order_credit_memo_created.json")
INVOICE_FILE = INVOICE_EVENT["data"]["object"]["fileId"]
CREDIT_MEMO_FILE = CREDIT_MEMO_EVENT["data"]["object"]["fileId"]
#: A PDF several chunks long, so that streaming shows (the client reads 64 KiB at a time).
PDF = b"%PDF-1.4\n" + b"0123456789abcdef" * 20_000 + b"\n%%EOF\n"


def content_url(file_id: str) -> str:
    return f"{DR}/files/{file_id}/content"


def as_in_order(file_id: str) -> dict:
    """An element of DR's invoicePDFs[] / creditMemoPDFs[] (accessing-invoices-and-credit-memos.md)."""
    return {"id": file_id, "url": f"https://api.digitalriver.com/files/{file_id}/content", "liveMode": False}


@pytest.fixture
def dr_api(settings):
    """DR at the client's edge: every call must be mocked by the test, and goes out with SECRET."""
    settings.DR_API_BASE_URL = DR
    settings.DR_SECRET_KEY = SECRET
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.DR_RATE_LIMIT_PER_SECOND = 10_000
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


@pytest.fixture
def no_disk_writes(monkeypatch):
    """Fail on any file opened for writing or any temporary file while the test runs."""
    attempts: list[str] = []
    real_open = builtins.open
    real_io_open = io.open

    def guarded(opener):
        def open_(file, mode="r", *args, **kwargs):
            if isinstance(mode, str) and any(flag in mode for flag in "wax+"):
                attempts.append(f"open({file!r}, {mode!r})")
            return opener(file, mode, *args, **kwargs)

        return open_

    def refused(name):
        def temp(*args, **kwargs):
            attempts.append(name)
            raise AssertionError(f"{name} called: nothing may be written to disk")

        return temp

    monkeypatch.setattr(builtins, "open", guarded(real_open))
    monkeypatch.setattr(io, "open", guarded(real_io_open))
    for name in ("NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refused(name))
    real_os_open = os.open

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            attempts.append(f"os.open({path!r})")
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    yield attempts
    assert attempts == [], f"written to disk: {attempts}"
