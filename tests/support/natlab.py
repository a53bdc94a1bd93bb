"""A small internet inside network namespaces: one public segment and two home networks,
each behind its own masquerading router — for NAT-traversal tests.

Everything lives in namespaces this module creates, on addresses in 10.213.0.0/16 that are
used only there; nothing has a route out of them, so no test traffic reaches the machine's
own interfaces.  Needs root, ``ip`` (iproute2) and ``iptables``.

    inet  : a bridge, the "internet" (10.213.0.0/24)
    pub   : the public node (relay), 10.213.0.2
    rta   : home router A, WAN 10.213.0.11, LAN 10.213.1.1, masquerades LAN -> WAN
    rtb   : home router B, WAN 10.213.0.12, LAN 10.213.2.1
    la    : laptop A, 10.213.1.2 (default route via rta)
    lb    : laptop B, 10.213.2.2 (default route via rtb)

The routers behave like home routers: outbound connections are masqueraded (Linux keeps
the source port when it is free, as most home routers do, so TCP hole punching can work);
unsolicited inbound packets are dropped silently, not refused.  With ``random_ports`` they
map every connection to a random outside port instead, which defeats hole punching.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

PUBLIC_IP = "10.213.0.2"
ROUTER_WAN = {"a": "10.213.0.11", "b": "10.213.0.12"}
LAPTOP_IP = {"a": "10.213.1.2", "b": "10.213.2.2"}


def unavailable_reason() -> str | None:
    """Why the lab cannot be built here (None if it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed"
    probe = f"p2pcprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    if made.returncode != 0:
        return f"'ip netns' is unavailable ({made.stderr.decode().strip()})"
    try:
        nat = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L"],
                             capture_output=True, timeout=10)
        if nat.returncode != 0:
            return f"iptables NAT is unavailable in a namespace ({nat.stderr.decode().strip()})"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


@dataclass
class NatLab:
    random_ports: bool = False  # routers pick a random outside port (a "symmetric" NAT)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    created: list[str] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"p2pc-{self.tag}-{role}"

    def run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, timeout=15)

    def in_ns(self, role: str, *args: str) -> None:
        self.run("ip", "netns", "exec", self.ns(role), *args)

    def exec_prefix(self, role: str) -> list[str]:
        """Command prefix that runs a program inside ``role``'s namespace."""
        return ["ip", "netns", "exec", self.ns(role)]

    def _veth(self, left: str, left_dev: str, right: str, right_dev: str) -> None:
        tmp_l, tmp_r = f"v{self.tag}{left_dev}"[:15], f"v{self.tag}{right_dev}x"[:15]
        self.run("ip", "link", "add", tmp_l, "type", "veth", "peer", "name", tmp_r)
        self.run("ip", "link", "set", tmp_l, "netns", self.ns(left), "name", left_dev)
        self.run("ip", "link", "set", tmp_r, "netns", self.ns(right), "name", right_dev)
        for role, dev in ((left, left_dev), (right, right_dev)):
            self.in_ns(role, "ip", "link", "set", dev, "up")

    def build(self) -> None:
        for role in ("inet", "pub", "rta", "rtb", "la", "lb"):
            self.run("ip", "netns", "add", self.ns(role))
            self.created.append(self.ns(role))
            self.in_ns(role, "ip", "link", "set", "lo", "up")
        self.in_ns("inet", "ip", "link", "add", "br0", "type", "bridge")
        self.in_ns("inet", "ip", "link", "set", "br0", "up")
        for role in ("pub", "rta", "rtb"):
            self._veth("inet", f"p{role}", role, "wan")
            self.in_ns("inet", "ip", "link", "set", f"p{role}", "master", "br0")
        self.in_ns("pub", "ip", "addr", "add", f"{PUBLIC_IP}/24", "dev", "wan")
        for side in ("a", "b"):
            router, laptop = f"rt{side}", f"l{side}"
            lan_net = "1" if side == "a" else "2"
            self.in_ns(router, "ip", "addr", "add", f"{ROUTER_WAN[side]}/24", "dev", "wan")
            self._veth(router, "lan", laptop, "eth0")
            self.in_ns(router, "ip", "addr", "add", f"10.213.{lan_net}.1/24", "dev", "lan")
            self.in_ns(laptop, "ip", "addr", "add", f"{LAPTOP_IP[side]}/24", "dev", "eth0")
            self.in_ns(laptop, "ip", "route", "add", "default", "via", f"10.213.{lan_net}.1")
            self.in_ns(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            self.in_ns(router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE",
                       *(["--random-fully"] if self.random_ports else []))
            # a home router: replies to what went out come back in; nothing else does
            self.in_ns(router, "iptables", "-A", "FORWARD", "-i", "wan", "-m", "conntrack",
                       "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
            self.in_ns(router, "iptables", "-A", "FORWARD", "-i", "wan", "-j", "DROP")
            self.in_ns(router, "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack",
                       "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
            self.in_ns(router, "iptables", "-A", "INPUT", "-i", "wan", "-j", "DROP")

    def destroy(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=15)
        self.created.clear()
