"""``--fleet PATH``: an inventory file as a fleet source (its hosts are SSH hosts)."""

from __future__ import annotations

from core.fleet.source import FleetError, FleetSource
from core.fleet.ssh import ssh_fleet_source
from core.inventory.inventory_files import InventoryFormat, file_format, load_inventory_file
from core.user_paths import UnknownUserError, expand_user


def file_source(spec: str) -> FleetSource:
    """The fleet source of ``--fleet PATH``.

    Raises:
        FleetError: the file does not exist or is a directory.
        core.inventory.errors.InventoryError: the file cannot be read.
    """
    try:
        path = expand_user(spec.strip())
    except UnknownUserError as exc:
        raise FleetError(f"fleet: {spec}: {exc}") from None
    if not path.exists():
        raise FleetError(
            f"fleet: {spec}: no such file; --fleet takes an inventory file or one of the "
            "sources (see --help)"
        )
    if path.is_dir():
        raise FleetError(f"fleet: {spec}: is a directory; name an inventory file")
    kind = file_format(path)
    config = path if kind is InventoryFormat.SSH_CONFIG else None
    return ssh_fleet_source(spec, lambda: load_inventory_file(path, kind), ssh_config=config)

