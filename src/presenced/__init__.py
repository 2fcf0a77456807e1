"""presenced: a self-hosted presence service that speaks the Microsoft Graph presence API."""

__version__ = "0.1.0"
