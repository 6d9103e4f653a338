from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def noop(request):
    """Reads the body and answers like the webhook endpoint, doing nothing else."""
    request.read()
    return JsonResponse({"status": "accepted"}, status=202)


urlpatterns = [path("bench/noop/", noop), *app_urlpatterns]
