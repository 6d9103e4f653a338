"""`/api/docs/` is served from the app itself: Swagger UI's script, styles and icon are this server's
static files (drf-spectacular-sidecar), never a CDN's, so the docs work offline and no third-party
script runs on the admin's origin."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from tests.security.conftest import person

pytestmark = pytest.mark.django_db


class Resources(HTMLParser):
    """Every URL the page makes the browser load: scripts, styles, icons, images, frames."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in {"script", "img", "iframe"} and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


@pytest.fixture
def docs_page():
    client = Client()
    client.force_login(person("reader"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    return response.content.decode()


def loaded(page: str) -> list[str]:
    parser = Resources()
    parser.feed(page)
    return parser.urls


def test_the_docs_load_only_this_servers_static_files(docs_page):
    urls = loaded(docs_page)
    static = "/" + settings.STATIC_URL.strip("/") + "/"
    assert len(urls) >= 4, urls  # the control: styles, icon, bundle, preset
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is on another origin"
        assert url.startswith(static), url
    assert not re.search(r"https?://|//cdn|jsdelivr|unpkg", docs_page), "the page names another origin"


def test_the_docs_static_files_are_found_by_the_staticfiles_finders(docs_page):
    static = "/" + settings.STATIC_URL.strip("/") + "/"
    for url in loaded(docs_page):
        path = urlsplit(url).path.removeprefix(static)
        assert finders.find(path), f"{path} is not found by the staticfiles finders"


def test_the_schema_it_reads_is_on_this_server(docs_page):
    assert 'url: "\\u002Fapi\\u002Fschema\\u002F"' in docs_page or 'url: "/api/schema/"' in docs_page
