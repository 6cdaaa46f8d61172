"""Domain errors that carry what a caller must fix.

Domain code raises these without importing grpc; the server's interceptor maps each
to its gRPC status code, so every service answers the same way for the same mistake.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a caller can act on; the message is shown to the caller."""


class InvalidArgument(DomainError):
    """The request is malformed: the message names the field and what is accepted."""


class NotFound(DomainError):
    """The request names an entity the service does not have."""


class FailedPrecondition(DomainError):
    """The service is not in a state to answer, for example a model is not trained yet."""


class Unavailable(DomainError):
    """A dependency the call needs (the event broker and the outbox) cannot take it now; retry later."""


class InvalidEvent(DomainError):
    """An event cannot be applied; the consumer sends it to the dead-letter topic with this reason."""
