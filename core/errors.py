"""The one hierarchy of fleetrun's errors: a front end catches :class:`FleetrunError`.

``str(exc)`` of every error here is the one line to show the user, as raised; ``where``
names the file, field, machine or setting the problem is about when the raiser knows it
(it is often already in the message too, so a front end prints ``str(exc)`` alone).

The kinds tell a front end what happened, not how to show it:

- :class:`BadInputError`: the user's input (a flag, a file, a setting, a query) is wrong;
  the same input will fail again.
- :class:`ServiceError`: a service refused, failed or could not be reached (``service``
  names it, for the prefix the CLI prints).
- Any other :class:`FleetrunError`: the world at large (the journal, a folder, a host).

Classes that were ``ValueError`` before keep it as a second base: callers catch it.

Left out on purpose: the sandbox's ``ArmError`` (``core/sandbox/errors.py``) is the
server's HTTP error envelope, and the sandbox shares no module with the client (see
``tests/unit/test_import_hygiene.py``), so it does not derive from anything here; nor
does ``core.sandbox.graph.GraphQueryError``.
"""

from __future__ import annotations

__all__ = ["BadInputError", "FleetrunError", "ServiceError"]


class FleetrunError(Exception):
    """Something fleetrun cannot do; ``str()`` is the message for the user.

    Attributes:
        where: The file, field, machine or setting the problem is about; "" if none.
    """

    where: str = ""

    def __init__(self, *args: object, where: str = "") -> None:
        super().__init__(*args)
        if where:
            self.where = where


class BadInputError(FleetrunError):
    """Input from the user that cannot be used; the message names it and what is wrong."""


class ServiceError(FleetrunError):
    """A service refused, failed, or could not be reached; the message is what it said.

    Attributes:
        service: Which service (``azure``), for a front end's prefix.
    """

    service: str = ""
