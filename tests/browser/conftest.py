"""Browser tests: Playwright driving Debian's chromium (Playwright's own browser download cannot
work here). Skipped when chromium is not installed; `.ci/run` installs it first."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"

# Playwright's sync API keeps an event loop in the test thread; the ORM calls the tests make there
# are still plain synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="chromium is not installed (make browser-deps)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under tests/artifacts/screenshots/ and return its path."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def log_in(page, live_server, django_user_model):
    """Create a staff user (superuser unless permissions are given) and log in through the form."""

    def log_in_as(username="admin", *, groups=(), superuser=True):
        from tests.conftest import restore_roles

        user = django_user_model.objects.create_user(
            username, password="browser-pass-1", is_staff=True, is_superuser=superuser
        )
        roles = restore_roles()
        user.groups.add(*(roles[name] for name in groups))
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "browser-pass-1")
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools")
        return user

    return log_in_as
