"""Errors the domain raises; the web layer turns each into its HTTP status."""

from __future__ import annotations


class RTCError(Exception):
    """A refusal with a message meant for the person who asked."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(RTCError):
    status = 400


class Forbidden(RTCError):
    status = 403


class NotFound(RTCError):
    status = 404


class Conflict(RTCError):
    status = 409


class TooLarge(RTCError):
    status = 413


class Invalid(RTCError):
    status = 422


class Unavailable(RTCError):
    """The hub did not answer a step the request needs."""

    status = 503
