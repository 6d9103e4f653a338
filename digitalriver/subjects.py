"""What an instruction or a call is about: ``"order:231388420336"`` or ``"sku:A-1"``.

Digital River's transport knows subjects as text only; the apps that own orders and SKUs register
where each kind's page is (``subject_page_register``), so the operations lists can link to it and
an operator can search by the bare id.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.html import format_html

KINDS = ("order", "sku")
_PAGES: dict[str, Callable[[str], str]] = {}


def subject_page_register(kind: str, page: Callable[[str], str]) -> None:
    """``page(id)`` is the address of the page of the ``kind`` with that id."""
    _PAGES[kind] = page


def subjects_about(term: str) -> list[str]:
    """The subjects an operator means by typing a bare id (or a whole subject)."""
    term = term.strip()
    if not term:
        return []
    kinds = dict.fromkeys((*KINDS, *_PAGES))
    return [term, *(f"{kind}:{term}" for kind in kinds if not term.startswith(f"{kind}:"))]


def subject_link(subject: str, text: str | None = None) -> str:
    """The subject linked to its order's or SKU's page when one is known, else as text."""
    kind, _, ident = subject.partition(":")
    page = _PAGES.get(kind)
    shown = subject if text is None else text
    if page is None or not ident:
        return shown or "-"
    return format_html('<a href="{}">{}</a>', page(ident), shown)
