"""An offline community: a shared ledger carried on a USB stick, then synced when the network comes.

Many commons live where the internet does not: community seed banks, grazing associations,
village water committees. Their record is kept in one notebook, which is exactly what makes
it fragile and contested. Here every household keeps the whole record, and records travel
the way people do: someone carries a file to the next village, imports it, adds what
happened there, and carries the result back. When a network appears (a mesh link, a market
day with Wi-Fi), the nodes simply sync, and a newcomer joins with an invite code.

What this example shows, with three nodes:

* **No network at all** — Amara keeps the seed bank's ledger; Kofi lives in the next village.
  No daemon runs and nothing listens. Amara exports the commons to a bundle file; Kofi imports
  it, asks to join and records the seed he saved (as a non-member, his contribution waits for
  review). His bundle goes back; Amara imports it, admits him (``p2pc admit``) and accepts his
  contribution; her bundle goes to Kofi. Both nodes now compute **the same state hash**,
  checked before any daemon starts.
* **Diverging while apart** — each then writes more on their own (Amara makes Kofi a
  reviewer; Kofi records germination tests; Amara records a seed distribution).
* **Meeting on the network** — Amara starts her node; Kofi starts his and connects to hers
  (``--bootstrap``); the two histories merge and converge.
* **A third node joins by invite** — Lea, a newcomer, joins with an invite code from Amara's
  node and connects to Kofi's node; all three converge, and Kofi reviews Amara's work.

The bundles here hold the whole commons (``p2pc export``); a bundle is self-verifying, so a
damaged stick is refused rather than half-imported.

Run: ``python examples/offline_community.py`` (about 25 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, console, main, require, step


def carry(net: Cluster, source: Node, target: Node, label: str) -> None:
    """Export ``source``'s copy of the commons to a file and import it on ``target`` (no network)."""
    stick = net.path(f"usb-stick-{label}.p2pcbundle")
    exported = source.json("export", "--commons", net.commons, "-o", str(stick))
    imported = target.json("import", str(stick))
    console.print(f"  [dim]{'':>9}   carried {exported['entry_count']} entries ({exported['byte_count']} bytes), "
                  f"{imported['added_count']} new to {target.name}[/dim]")


def scenario(net: Cluster) -> Node:
    amara, kofi, lea = net.nodes
    step("Amara founds the seed bank's ledger on her laptop — no network anywhere")
    net.found(amara, "Village Seed Bank", description="Seeds saved, lent and returned by the households.",
              license="Seeds are a commons: save, share, return", membership="open")
    stock = amara.write("contribute", "--title", "Founding stock: 5 kg millet, 3 kg cowpea", "--kind", "seed",
                        "--value", "8")

    step("A USB stick goes to the next village: Kofi imports it, asks to join and records his seed")
    carry(net, amara, kofi, "1")
    kofi.write("join", net.commons, "--name", "Kofi")
    sorghum = kofi.write("contribute", "--title", "Saved 2 kg of red sorghum seed", "--kind", "seed", "--value",
                         "2")

    step("The stick comes back: Amara admits Kofi and accepts his seed; then the stick goes to Kofi again")
    carry(net, kofi, amara, "2")
    admitted = amara.json("admit")
    require(len(admitted["admissions"]) == 1, "Amara's node admitted Kofi's join")
    amara.write("review", sorghum["id"], "accept", "-m", "Weighed and stored, jar 14.")
    carry(net, amara, kofi, "3")
    net.converge([amara, kofi], timeout=10, what="offline, through bundle files only")

    step("Apart again, both keep writing")
    amara.write("role", "Kofi", "grant", "reviewer")
    tests = kofi.write("contribute", "--title", "Germination test: sorghum 92 %", "--kind", "testing")
    lent = amara.write("contribute", "--title", "Lent 1 kg millet to 6 households", "--kind", "distribution",
                       "--value", "3")
    hashes = {amara.json("state", quiet=True)["state_hash"], kofi.json("state", quiet=True)["state_hash"]}
    require(len(hashes) == 2, "the two copies have diverged (each holds entries the other lacks)")

    step("Market day brings Wi-Fi: Amara starts her node, Kofi's node connects to it")
    amara.start()
    kofi.start(amara.addr)
    net.converge([amara, kofi], what="the two histories merged over the network")

    step("Lea, a newcomer, joins with an invite code from Amara's node and connects to Kofi's")
    net.invite(amara, lea)
    lea.start(kofi.addr)
    kofi.write("review", stock["id"], "accept", "-m", "Counted the jars with Amara.")
    kofi.write("review", lent["id"], "accept")
    amara.write("review", tests["id"], "accept")
    lea.write("contribute", "--title", "Returned 1 kg millet (plus 10 % as agreed)", "--kind", "return",
              "--value", "1")
    net.converge(what="Lea's join, the reviews and her first entry")
    counts = net.counts(lea)
    require(counts == {"accepted": 4, "pending": 1, "rejected": 0},
            f"Lea's node holds the whole history: 4 accepted contributions, hers pending review ({counts})")
    return lea


if __name__ == "__main__":
    sys.exit(main("An offline community: bundles first, then the network", ["Amara", "Kofi", "Lea"], scenario))
