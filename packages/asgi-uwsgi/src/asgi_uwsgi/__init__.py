"""The uWSGI binary protocol for ASGI servers behind nginx uwsgi_pass"""

from .__about__ import __version__

__all__ = ["__version__"]
