"""A run's ``--fleet`` values survive the journal's one text field, node-set commas included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.fleet.spec_text import join_fleet_specs, split_fleet_specs

specs = st.lists(st.text(alphabet="abc:,[]-/.0129 ", min_size=1, max_size=12), min_size=1,
                 max_size=4)


@given(specs)
def test_any_fleet_values_come_back_as_they_were_given(values: list[str]) -> None:
    assert split_fleet_specs(join_fleet_specs(values)) == values


def test_plain_values_stay_readable_in_the_history() -> None:
    assert join_fleet_specs(["sandbox", "hosts.toml"]) == "sandbox,hosts.toml"
    # Records written before node sets existed read as they always did.
    assert split_fleet_specs("azure,ssh-config") == ["azure", "ssh-config"]


def test_a_node_set_with_commas_is_one_value() -> None:
    text = join_fleet_specs(["ssh:web[01-03],db1:2222", "sandbox"])
    assert split_fleet_specs(text) == ["ssh:web[01-03],db1:2222", "sandbox"]
