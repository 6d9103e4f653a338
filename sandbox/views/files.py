"""`/files/{id}`, `/files/{id}/content` (the secret key's PDF) and `/file-links`; public links outside the API."""

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from ..errors import not_found
from ..models import File, FileLink
from ..services.documents import file_link_create
from .base import Answer, endpoint, json_body


def _file(file_id: str) -> File:
    found = File.objects.filter(dr_id=file_id).first()
    if found is None:
        raise not_found("id", file_id)
    return found


def pdf_response(file: File) -> HttpResponse:
    response = HttpResponse(bytes(file.content), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{file.file_name}"'
    return response


def get_file(request: HttpRequest, file_id: str) -> Answer:
    return 200, _file(file_id).as_dr()


def get_file_content(request: HttpRequest, file_id: str) -> HttpResponse:
    return pdf_response(_file(file_id))


def create_file_link(request: HttpRequest) -> Answer:
    def public_url(link_id: str) -> str:
        return request.build_absolute_uri(reverse("sandbox:file_link", args=[link_id]))

    return 201, file_link_create(body=json_body(request), public_url=public_url).as_dr()


def get_file_link(request: HttpRequest, link_id: str) -> Answer:
    found = FileLink.objects.filter(dr_id=link_id).first()
    if found is None:
        raise not_found("id", link_id)
    return 200, found.as_dr()


def public_link(request: HttpRequest, link_id: str) -> HttpResponse:
    """What a customer opens: no key, the PDF until the link expires, then 404."""
    link = FileLink.objects.select_related("file").filter(dr_id=link_id).first()
    if link is None or link.expired:
        raise Http404("This link does not exist or has expired.")
    return pdf_response(link.file)


file = endpoint(get=get_file)
file_content = endpoint(get=get_file_content)
file_links = endpoint(post=create_file_link)
file_link = endpoint(get=get_file_link)
