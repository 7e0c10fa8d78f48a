"""A one-file Django project under gunicorn-asgi: `gunicorn-asgi --chdir examples django_app:application`.

A real project points DJANGO_SETTINGS_MODULE at its settings and serves `myproject.asgi:application`.
"""

import django
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-not-secret",  # noqa: S106 - a demo, never deployed
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=[],
)
django.setup()


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"framework": "django", "path": request.path, "query": request.GET.get("q")})


async def echo(request: HttpRequest) -> HttpResponse:  # an async view
    return HttpResponse(request.body, content_type="application/octet-stream")


urlpatterns = [path("hello/", hello), path("echo/", echo)]

application = get_asgi_application()
