"""``hostname`` on a Uniform scale set prints each instance's computer name (``queue-ss000000``
for the instance ``queue-ss/0``): ``--group-noise`` takes it as the machine's own name, so the
instances group into one group."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CliRunner

FLEET = """
[sandbox]
flush_interval = "200ms"

[[scale_sets]]
name = "queue-ss"
orchestration = "Uniform"
count = 3
os = "linux"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-queue"
location = "westus2"
"""


def test_hostname_on_a_scale_set_groups_into_one_group_modulo_noise(
        cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    fleet = f"sandbox:{path}"
    plain = cli("run", "--fleet", fleet, "--shell", "hostname", "-o", "table",
                env={"COLUMNS": "200"})
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.count("1 machine(s), exit 0") == 3
    for computer_name in ("queue-ss000000", "queue-ss000001", "queue-ss000002"):
        assert computer_name in plain.stdout
    noisy = cli("run", "--fleet", fleet, "--shell", "hostname", "-o", "table",
                "--group-noise", env={"COLUMNS": "200"})
    assert noisy.returncode == 0, noisy.stderr
    assert "3 machine(s), exit 0, modulo noise" in noisy.stdout
    assert "1 machine(s)" not in noisy.stdout
