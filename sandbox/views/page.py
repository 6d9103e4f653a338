from django.http import HttpResponse
from django.shortcuts import redirect


def index(request):
    return HttpResponse("sandbox")


def action(request, action):
    return redirect("sandbox:index")
