"""gunicorn-asgi: a Gunicorn worker serving ASGI apps over HTTP/1.1, WebSocket, HTTP/2 and uWSGI.

`gunicorn-asgi main:app --workers 4`, or with plain Gunicorn `gunicorn main:app --worker-class
gunicorn_asgi.Worker` (also spelled `egg:gunicorn-asgi#asgi`). The worker composes the protocol packages
through the asgi-core registry; see the README for the settings it honours and adds.
"""

from .__about__ import __version__
from ._errors import StartupError
from ._ops_settings import describe_ops_settings
from ._settings import SETTINGS, register
from .worker import ASGIWorker

#: The dotted-path spelling: `--worker-class gunicorn_asgi.Worker`.
Worker = ASGIWorker

__all__ = [
    "SETTINGS",
    "ASGIWorker",
    "StartupError",
    "Worker",
    "__version__",
    "describe_ops_settings",
    "register",
]
