"""`pip install .` (not editable) carries the whole app: the wheel built from pyproject.toml holds
every app package with all its files (templates, static files, README) and the project-wide
directories that settings read from next to config/ (templates/)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "core", "digitalriver", "catalog", "commerce", "fulfillment", "desk", "operations", "sandbox")
# Top-level packages of the repository that are not part of the installed app.
NOT_SHIPPED = {"tests", "bench"}
BUILD_WHEEL = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
BUILD_TIMEOUT_SECONDS = 60


def shipped_files(top: Path) -> set[str]:
    """Every file under a directory the wheel must carry, as a wheel path."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in top.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def directories_settings_read() -> list[Path]:
    """Directories the settings read files from beside the code (BASE_DIR is where config/ lies, so
    once installed they must lie in site-packages too)."""
    base = Path(settings.BASE_DIR).resolve()
    dirs = [Path(d) for t in settings.TEMPLATES for d in t.get("DIRS", [])]
    dirs += [Path(d if isinstance(d, str | Path) else d[1]) for d in getattr(settings, "STATICFILES_DIRS", [])]
    return [d.resolve() for d in dirs if d.resolve().is_relative_to(base) and d.resolve().exists()]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    """Build the wheel the way pip does (PEP 517, setuptools) from a copy of the sources."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy2(ROOT / "pyproject.toml", source)
    shutil.copy2(ROOT / "README.md", source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", "staticfiles")
    for top in ROOT.iterdir():
        skip = top.name.startswith(".") or top.name in NOT_SHIPPED or ignore(str(ROOT), [top.name])
        if top.is_dir() and not skip:
            shutil.copytree(top, source / top.name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-c", BUILD_WHEEL, out],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_every_top_level_package_is_an_app_we_ship():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - NOT_SHIPPED == set(APPS), "a new app needs a place in pyproject.toml and in APPS here"


@pytest.mark.parametrize("app", APPS)
def test_the_wheel_carries_every_file_of_each_app(wheel_names, app):
    expected = shipped_files(ROOT / app)
    assert f"{app}/__init__.py" in expected
    assert expected - wheel_names == set()


def test_the_wheel_carries_the_apps_templates(wheel_names):
    for template in (
        "operations/templates/admin/operations/dashboard.html",
        "operations/templates/operations/alert_email.txt",
        "sandbox/templates/sandbox/index.html",
        "sandbox/README.md",
    ):
        assert template in wheel_names


def test_the_wheel_carries_what_settings_read_beside_the_code(wheel_names):
    directories = directories_settings_read()
    assert ROOT / "templates" in directories
    for directory in directories:
        expected = shipped_files(directory)
        assert expected, f"{directory} is empty"
        assert expected - wheel_names == set()


def test_the_wheel_carries_nothing_else(wheel_names):
    tops = {name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == set(APPS) | {d.relative_to(ROOT).parts[0] for d in directories_settings_read()}
