"""A self-build workshop like L'Atelier Paysan's: eight seats, booked, cancelled, re-booked.

L'Atelier Paysan is a French cooperative of farmers who design their own tools and publish
the plans as commons; its trainers run self-build workshops ("formations à
l'autoconstruction") in which farmers build a tool together in a week. A workshop has a
fixed number of places at the benches: a *shared* capacity. Per-member limits alone do not
protect it — ten farms booking one seat each would all be accepted — so the seats are a
capacity for the whole commons, and a farm that can no longer come gives its seat back.

What this example shows, with three nodes on 127.0.0.1:

* **A workshop as a resource with a whole-commons capacity** — Camille, a trainer, adds
  "Atelier rouleau FACA" with ``--capacity 8`` seats (and at most 4 per farm, ``--quota``):
  ``p2pc resource list`` shows what is left this period, for you and for the commons.
* **Seats booked** — Julien books 3 seats for his GAEC and 1 for an apprentice, Inès 3 for
  her cooperative: 7 of 8.
* **Two farms want the last seat at the same moment** — Camille and Inès book it at once,
  each from her own node. However the entries arrive, every node orders them the same way:
  exactly one booking holds the seat, the other has no effect (if one node had already
  heard of the other's booking, it refused its own before signing).
* **The ninth seat refused with the numbers** — a further booking is refused before it is
  signed (exit 7): "8 + 1 > 8 seats per period for the whole commons".
* **A cancellation and a re-booking by someone else** — Julien's apprentice cannot come:
  he cancels that booking (``p2pc resource cancel``, only the member who booked may), the
  seat is free again, and the farm that lost the race books it.

Not expressible, so not faked: a seat is a number, not a named bench or a person (a booking
names no attendee; ``--note`` says who it is for); the workshop's dates are the resource's
name, since a period here is a number of seconds from the epoch, not a calendar date.

Run: ``python examples/atelier_paysan.py`` (about 30 s).
"""

from __future__ import annotations

import sys
from typing import Any

from _harness import Cluster, ExampleError, Node, _data, _parallel, console, main, require, step

WORKSHOP = "Atelier rouleau FACA"

CHARTER = {
    "membership": {"policy": "invite", "admitters": ["steward"]},
    "resources": {"roles": ["steward"], "use_roles": ["member"]},
}


def _seats(node: Node) -> dict[str, Any]:
    rows = node.json("resource", "list", quiet=True)["resources"]
    row: dict[str, Any] = next(r for r in rows if r["name"] == WORKSHOP)
    return row


def _error(stdout: str) -> str:
    """The message of a --json error envelope."""
    import json

    return str(json.loads(stdout)["error"]["message"])


def _book(node: Node, seats: int, note: str) -> str | None:
    """Book seats from this node: the entry id, or None if the node refused it before signing
    (it already knew the seats were taken)."""
    result = node.run("resource", "use", WORKSHOP, str(seats), "--note", note, "--json", check=False)
    if result.returncode == 7:
        reason = _error(result.stdout)
        console.print(f"  {'':>9}   refused before signing: {reason}", markup=False, style="yellow")
        return None
    if result.returncode != 0:
        raise ExampleError(f"{node.name}'s booking failed (exit {result.returncode}): {result.stdout.strip()}")
    data: dict[str, Any] = _data(result.stdout)
    return str(data["id"])


def scenario(net: Cluster) -> Node:
    camille, julien, ines = net.nodes
    step("Camille, a trainer, founds the workshop commons; Julien and Inès (farmers) join with invites")
    net.found(camille, "Atelier Paysan — formations", description="Self-build workshops for farm tools.",
              license="CC BY-NC-SA 4.0 (plans)", rules=CHARTER)
    camille.start()
    net.invite(camille, julien, ines)
    net.start(julien, ines, bootstrap=camille)
    net.converge(what="Julien and Inès admitted")

    step("Camille adds the workshop: 8 seats for the whole commons, at most 4 per farm")
    camille.write("resource", "add", WORKSHOP, "--rivalrous", "--capacity", "8", "--quota", "4", "--unit", "seats")
    net.converge(what="the workshop")
    require(_seats(ines)["left_this_period"] == {"mine": 4, "whole_commons": 8}, "8 seats free, 4 for Inès")

    step("Julien books 3 seats for his GAEC and 1 for an apprentice; Inès books 3 for her cooperative")
    julien.write("resource", "use", WORKSHOP, "3", "--note", "GAEC des Prés")
    apprentice = julien.write("resource", "use", WORKSHOP, "1", "--note", "apprentice")["id"]
    ines.write("resource", "use", WORKSHOP, "3", "--note", "CUMA du Val")
    net.converge(what="seven seats booked")
    require(_seats(camille)["left_this_period"]["whole_commons"] == 1, "one seat left for the commons")

    step("Camille (for a farm of her network) and Inès book the last seat at the same moment")
    raced = _parallel([lambda: _book(camille, 1, "Ferme du Bois"), lambda: _book(ines, 1, "CUMA du Val, 4th")])
    net.converge(what="the race for the last seat")
    signed = [entry for entry in raced if entry is not None]
    held = [entry for entry in signed if julien.outcome(entry)["status"] == "applied"]
    require(len(held) == 1, f"exactly one booking holds the last seat ({len(signed)} signed)")
    require(sum(_seats(julien)["used"].values()) == 8, "eight seats taken, never nine, on Julien's node too")
    winner = camille if held[0] == raced[0] else ines
    loser = ines if winner is camille else camille

    step(f"{loser.name} tries again: the ninth seat is refused before signing, with the numbers")
    ninth = loser.refused("resource", "use", WORKSHOP, "1", "--note", "one more")
    require("8 + 1 > 8 seats per period for the whole commons" in ninth, "the ninth seat is refused")

    step("Julien's apprentice cannot come: he cancels that booking; the seat is free again")
    other = loser.refused("resource", "cancel", apprentice)
    require("only the member who used a resource may cancel that use" in other, "only Julien may cancel it")
    julien.write("resource", "cancel", apprentice)
    net.converge(what="the cancellation")
    require(_seats(loser)["left_this_period"]["whole_commons"] == 1, "one seat free again")

    step(f"{loser.name} books the freed seat")
    before = _seats(loser)["used_this_period"]
    loser.write("resource", "use", WORKSHOP, "1", "--note", "re-booked after a cancellation")
    net.converge(what="the re-booking")
    lists = [_seats(node) for node in (camille, julien, ines)]
    require(all(r["used_this_period"] == 8 == before + 1 for r in lists), "8 of 8 seats, on every node")
    console.print(julien.run("resource", "list").stdout.rstrip(), markup=False, style="dim")
    return julien


if __name__ == "__main__":
    sys.exit(main("A self-build workshop like L'Atelier Paysan's", ["Camille", "Julien", "Ines"], scenario))
