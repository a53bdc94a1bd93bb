"""Two laptops behind separate NATs meet through a relay, converge, and say truthfully
whether they went direct (DCUtR hole punching) or stayed relayed.

Real daemons in separate processes, each in its own network namespace of a small internet
the test builds (tests/support/natlab.py: a public segment, two masquerading home routers
that drop unsolicited inbound packets).  Addresses are in 10.213.0.0/16, used only inside
those namespaces; they are deleted on every exit path.  Needs root, ``ip netns`` and
``iptables``; skipped with the reason otherwise.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_json import unwrap
from tests.support.natlab import LAPTOP_IP, PUBLIC_IP, ROUTER_WAN, NatLab, unavailable_reason
from tests.test_node_integration import P2PC, NodeProc, converged, wait_for

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture(params=["port-keeping NATs", "random-port NATs"])
def natlab(request: pytest.FixtureRequest) -> Iterator[NatLab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"NAT lab unavailable: {reason}")
    lab = NatLab(random_ports=request.param.startswith("random"))
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy()


class LabNode(NodeProc):
    """A node whose daemon runs in one of the lab's namespaces (driven from outside
    through its control socket, a file)."""

    def __init__(self, root: Path, name: str, lab: NatLab, role: str, ip: str, config: str = "") -> None:
        super().__init__(root, name)
        self.lab, self.role, self.ip = lab, role, ip
        (self.home / "config.toml").write_text(f"[network]\nlisten = [\"/ip4/{ip}/tcp/4001\"]\n{config}")

    def start(self, *bootstrap: str, sync_interval: float = 2.0, wait: bool = True, stall: float = 20,
              listen: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> None:
        args = [*self.lab.exec_prefix(self.role), *P2PC, "node", "start", "--foreground", "--home",
                str(self.home), "--sync-interval", str(sync_interval), "-v"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        if wait:
            wait_for(self._status_or_none, 30, f"{self.name} to start")

    def cli_status(self) -> dict[str, Any]:
        return dict(unwrap(self.p2pc("node", "status", "--json").stdout))

    def tcp_peers(self) -> set[str]:
        """Remote IPs of this namespace's established TCP connections (the kernel's view)."""
        out = subprocess.run([*self.lab.exec_prefix(self.role), "ss", "-Htn", "state", "established"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def _peer(status: dict[str, Any], peer_id: str) -> dict[str, Any]:
    return next((p for p in status["peers"] if p["peer_id"] == peer_id), {})


def test_two_nats_meet_through_a_relay(natlab: NatLab, tmp_path: Path) -> None:
    relay = LabNode(tmp_path, "relay", natlab, "pub", PUBLIC_IP, "relay_service = true\n")
    a = LabNode(tmp_path, "home-a", natlab, "la", LAPTOP_IP["a"])
    b = LabNode(tmp_path, "home-b", natlab, "lb", LAPTOP_IP["b"])
    nodes = [relay, a, b]
    try:
        commons = relay.p2pc_json("commons", "create", "two homes", "--membership", "open")["commons"]
        relay.start()
        a.start()
        # A joins from the relay's invite (the relay has a public address) ...
        a.p2pc_json("join", relay.p2pc_json("invite", "create")["code"])
        # ... learns it is behind NAT and takes a slot on the relay
        reserved = wait_for(lambda: a.status()["reach"]["reservation"], 60, "A's relay reservation")
        assert reserved["relay"] == relay.status()["peer_id"]
        # B joins from A's invite alone: A's own address is on its LAN, so B gets in
        # through the circuit address the invite carries
        invite = a.p2pc_json("invite", "create")
        assert any("/p2p-circuit/" in addr for addr in invite["addrs"]), invite["addrs"]
        # B joins before starting its daemon: the one-shot node of `join` dials the circuit
        # address from B's namespace; the daemon then finds A again from its peer book
        joined = subprocess.run([*natlab.exec_prefix("lb"), *P2PC, "join", invite["code"], "--json",
                                 "--home", str(b.home)], capture_output=True, text=True, timeout=90)
        assert joined.returncode == 0, joined.stderr
        assert unwrap(joined.stdout)["synced"], joined.stdout
        b.start()
        a_id, b_id = a.status()["peer_id"], b.status()["peer_id"]
        wait_for(lambda: b_id in a.status()["connected"], 30, "B to reach A through the relay")

        b.p2pc("contribute", "--title", "from home B", "--commons", commons)
        a.p2pc("contribute", "--title", "from home A", "--commons", commons)
        wait_for(converged([a, b], commons), 60, "A and B to converge")
        assert sum(a.heads()[commons].values()) >= 4  # genesis, two joins, admissions, two posts

        # AutoNAT's verdicts: the relay is public, the laptops are not
        wait_for(lambda: relay.status()["reach"]["reachability"] == "public", 60, "the relay to be public")
        wait_for(lambda: a.status()["reach"]["reachability"] == "private", 60, "A to find it is behind NAT")

        # DCUtR gets a few rounds to punch through; then status must match the kernel
        went_direct = bool(wait_for_or_false(
            lambda: _peer(a.status(), b_id).get("connection") == "direct", 25 if natlab.random_ports else 45))
        print(f"\nA<->B connection behind {'random-port' if natlab.random_ports else 'port-keeping'} NATs: "
              f"{'direct (DCUtR hole punch)' if went_direct else 'relayed'}")
        if natlab.random_ports:
            assert not went_direct  # the hole punch cannot work: it must stay relayed, and say so
        status_a, status_b = a.cli_status(), b.cli_status()
        seen_by_a = _peer(status_a, b_id).get("connection")
        seen_by_b = _peer(status_b, a_id).get("connection")
        assert seen_by_a in ("direct", "relayed") and seen_by_b in ("direct", "relayed")
        kernel_a = a.tcp_peers()
        # a direct A-B connection is a TCP connection to B's router; a relayed one is not
        assert (ROUTER_WAN["b"] in kernel_a) == (seen_by_a == "direct"), (seen_by_a, kernel_a)
        assert PUBLIC_IP in kernel_a  # to the relay (its reservation, and the circuit if relayed)
        if seen_by_a == "relayed":
            assert "through relay" in status_a["reach"]["summary"]
        assert status_a["reach"]["reservation"]["addrs"][0].endswith(f"/p2p-circuit/p2p/{a_id}")
        assert status_a["reach"]["reachability"] == "private"
        relay_service = relay.cli_status()["reach"]["relay_service"]
        assert relay_service["enabled"] and relay_service["reservations"] >= 1

        # A restarts on a new port (a laptop whose old port was taken): it takes a slot again,
        # B finds it again at the same circuit address and they converge
        a.stop()
        (a.home / "config.toml").write_text(f"[network]\nlisten = [\"/ip4/{a.ip}/tcp/4002\"]\n")
        a.start()
        assert any("/tcp/4002" in x for x in a.status()["listen"]), a.status()["listen"]
        wait_for(lambda: a.status()["reach"]["reservation"], 60, "A's reservation after its restart")
        wait_for(lambda: b_id in a.status()["connected"], 60, "B to find A again after A's restart")
        a.p2pc("contribute", "--title", "back again", "--commons", commons)
        wait_for(converged([a, b], commons), 60, "A and B to converge after A's restart")
    finally:
        for node in nodes:
            node.stop()


def wait_for_or_false(condition: Any, timeout: float) -> Any:
    try:
        return wait_for(condition, timeout, "")
    except AssertionError:
        return False
