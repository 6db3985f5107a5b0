"""The testbed network's names and addresses, and its refusals, without touching the kernel."""

from __future__ import annotations

import ipaddress

import pytest

from ozwald_testbed.netns import HostNamespaces, NetnsError


def test_hosts_get_their_names_and_addresses_after_the_machines_side() -> None:
    network = HostNamespaces(count=3)
    assert str(network.gateway) == "10.213.0.1"
    assert [(h.name, h.namespace, h.host_veth, str(h.address)) for h in network.hosts] == [
        ("h1", "ozwald-h1", "ozwald-h1-v", "10.213.0.11"),
        ("h2", "ozwald-h2", "ozwald-h2-v", "10.213.0.12"),
        ("h3", "ozwald-h3", "ozwald-h3-v", "10.213.0.13"),
    ]
    assert network.host_named("h2") == network.host_named("ozwald-h2") == network.host(2)


def test_a_program_runs_in_the_network_namespace_only() -> None:
    network = HostNamespaces(count=1)
    argv = network.exec_argv(network.host(1), ["ozwald-agent", "--socket", "/x"])
    assert argv[0].endswith("nsenter")
    assert argv[1:] == ["--net=/run/netns/ozwald-h1", "--", "ozwald-agent", "--socket", "/x"]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"count": 0}, "at least one host"),
        ({"count": 3, "subnet": ipaddress.IPv4Network("10.1.0.0/29")}, "do not fit"),
        ({"prefix": "a-very-long-prefix"}, "longer than Linux's 15"),
        ({"bridge": "bridge-with-a-long-name"}, "longer than Linux's 15"),
        ({"prefix": "Oz_"}, "lower-case"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(
    settings: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        HostNamespaces(**settings)  # type: ignore[arg-type]


def test_an_unknown_host_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="its hosts are h1, h2"):
        HostNamespaces(count=2).host_named("h3")


def test_without_ip_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(NetnsError, match="apt-get install iproute2"):
        HostNamespaces().up()


def test_without_root_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(NetnsError, match="need root"):
        HostNamespaces().down()
