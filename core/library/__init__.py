'''The saved-command library: TOML files, one per command, plus a starter library.

User commands live in ``<config dir>/commands/*.toml`` (``FLEETRUN_CONFIG_DIR`` moves the
config dir); the starter library ships in ``core/starter_commands/``. A user file whose
``name`` is a starter command's replaces it. A file that cannot be used is reported with its
path and the field at fault, and skipped; the others load.

The file format, by example (every field shown; only ``name`` and one script are needed)::

    name = "tcp-check"                    # 1-64 of A-Z a-z 0-9 . _ -; unique
    description = "Can this machine open a TCP connection to SERVER:PORT?"
    tags = ["network", "probe"]           # words to search by
    timeout = 60                          # seconds per machine; 0 = no limit; absent = 3600
    dangerous = false                     # true: it changes state; a run asks to type the
                                          # target count first (or --yes on the CLI)

    [[parameters]]                        # one table per parameter, in the order shown
    name = "server"                       # an env var on Linux, -server to PowerShell
    description = "Host name or IP address"
    required = true                       # a run needs a non-empty value
    pattern = '^[A-Za-z0-9.:-]+$'         # a non-empty value must match it as a whole

    [[parameters]]
    name = "port"
    default = "443"                       # values are strings: quote numbers
    pattern = '^[0-9]{1,5}$'

    [[parameters]]
    name = "proto"
    choices = ["tcp", "udp"]              # choices or pattern, not both
    os = "linux"                          # only Linux machines get it ("windows": only
                                          # Windows); absent (or "both"): both

    [[parameters]]
    name = "token"
    protected = true                      # sent as a protected parameter; its value is
                                          # never written to a file, log or screen, so a
                                          # protected parameter has no default

    [scripts]                             # at least one of the two
    shell = """
    timeout 5 bash -c "exec 3<>/dev/tcp/$server/${port:-443}" && echo open
    """
    powershell = """
    param([string]$server, [string]$port = '443', [string]$proto, [string]$token)
    ...
    """

Scripts run as the Run Command handlers run them: ``shell`` (RunShellScript) under bash on
Linux with each named parameter as an environment variable; ``powershell``
(RunPowerShellScript) on Windows with ``-name value`` arguments, so its ``param()`` block
names the parameters of the table. A parameter whose value is empty is not passed at all.
Parameter names that would break a script are refused: PowerShell's read-only automatic
variables (``host``, ``pid``, ``args``, ...) when there is a PowerShell script, and
variables bash and the loader rely on (``PATH``, ``IFS``, ``LD_PRELOAD``, ...) when there is
a shell script.
'''

from core.library.files import (
    command_document,
    default_user_dir,
    load_library,
    parse_command,
    read_command,
    save_command,
    saved_command_from,
    starter_paths,
)
from core.library.model import (
    CommandParameter,
    Library,
    LibraryError,
    LibraryProblem,
    ParameterError,
    ParameterProblem,
    SavedCommand,
    suggest_name,
)

__all__ = [
    "CommandParameter",
    "Library",
    "LibraryError",
    "LibraryProblem",
    "ParameterError",
    "ParameterProblem",
    "SavedCommand",
    "command_document",
    "default_user_dir",
    "load_library",
    "parse_command",
    "read_command",
    "save_command",
    "saved_command_from",
    "starter_paths",
    "suggest_name",
]
