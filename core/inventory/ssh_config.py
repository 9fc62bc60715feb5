"""The hosts of an OpenSSH client config, as SSH machines (``--fleet ssh-config[:PATH]``).

Each concrete alias of a ``Host`` line (no ``*`` or ``?``, not negated with ``!``) is one
machine, named by the alias; wildcard patterns only carry options and list nothing.
``Include`` is followed; ``Match`` blocks list nothing (:mod:`core.openssh.config` reads the
file as ssh does).

Only listing happens here. The machine's endpoint is the alias itself, so at connect time
asyncssh applies the config for it (``HostName``, ``Port``, ``User``, ``IdentityFile``,
``ProxyJump`` ...) with its own, complete semantics: nothing is interpreted twice. The one
option read here is ``HostName``, for the address people see.
"""

from __future__ import annotations

from pathlib import Path

from core.inventory.errors import InventoryError
from core.inventory.ssh_hosts import no_hosts_error, ssh_machine
from core.model import Machine
from core.openssh.config import SshConfigError, host_aliases, hostname_for, read_ssh_config


def load_ssh_config(path: Path, *, ssh_dir: Path | None = None) -> list[Machine]:
    """The machines of an ssh config: one per concrete Host alias, in order of appearance.

    Args:
        path: The config file.
        ssh_dir: Where relative Include paths are; ``~/.ssh`` by default.

    Raises:
        InventoryError: the file cannot be read, a line is malformed, or no alias is concrete.
    """
    try:
        reader = read_ssh_config(path, ssh_dir=ssh_dir)
    except SshConfigError as exc:
        raise InventoryError(str(exc)) from None
    aliases = host_aliases(reader)
    if not aliases:
        raise no_hosts_error(
            path, "no Host line names a concrete alias (patterns with * or ? list nothing)"
        )
    return [ssh_machine(alias, host=alias, address=hostname_for(reader, alias) or alias)
            for alias in aliases]
