"""An open value network like Sensorica: contribution accounting, weights per kind, shared benefits.

Sensorica (Montréal, since 2011) is an *open value network*: people and organisations
design and build open scientific instruments together without an employer. Nobody is paid
a wage; every contributor logs what they did (design, fabrication, documentation,
coordination), peers evaluate the logs, and when revenue comes in — a sale, a grant — it is
shared according to the resulting **contribution accounting**, with different kinds of work
weighted differently by rules the network agreed on. Its designs are shared under
*CopyFair*-style terms: free to copy for commoners, while commercial users reciprocate to
the commons, and what comes back is distributed to the contributors.

What this example shows, with three nodes on 127.0.0.1:

* **Weights per kind of contribution, as rules** — the charter's ``[values]`` table weighs
  design 150 %, fabrication 120 %, documentation 80 %, anything else 100 %.
* **Contribution accounting with peer evaluation** — Tibi, Ivan and Maria log their work in
  hours (the claimed value); reviewers accept it, once with an *adjusted* value (peer
  evaluation lowers a claim). The ledger holds each contributor's accepted, weighted value
  (value × weight ÷ 100, in whole units) and their share of the total.
* **A benefit distribution by the ledger** — a lab that sells sensors built from the
  network's designs pays 2,000 CAD back under the CopyFair terms; a steward records the
  distribution, and every node computes the same shares: proportional to ledger value,
  rounded down, remaining units by largest remainder, summing exactly to 2,000.

Not expressible, so not faked: the commons cannot enforce a license or collect the money
(the CopyFair terms are the genesis ``license`` text; the distribution records who is owed
what, the payment itself happens outside); a distribution is shared by the whole ledger to
date (no per-project or time-decayed accounting).

Run: ``python examples/sensorica.py`` (about 30 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, main, require, step

CHARTER = {
    "membership": {"policy": "open"},
    "contribution": {"policy": "members"},
    "review": {"roles": ["reviewer"], "accepts": 1, "rejects": 1, "self_review": False},
    "values": {"default": 100, "design": 150, "fabrication": 120, "documentation": 80},
    "distribution": {"roles": ["steward"]},
}

WORK = [  # (who, title, kind, hours claimed)
    ("Ivan", "Optical sensor PCB design, rev B", "design", 20),
    ("Maria", "Assembled and tested 10 sensor units", "fabrication", 15),
    ("Maria", "Build guide with photos", "documentation", 8),
    ("Tibi", "Project coordination, Q3", "coordination", 10),
]


def scenario(net: Cluster) -> Node:
    tibi, ivan, maria = net.nodes
    by_name = {n.name: n for n in net.nodes}
    step("Tibi founds the network's commons with its value-accounting rules")
    net.found(tibi, "Sensorica Optical Sensors", description="Open scientific instruments, built as a network.",
              license="CERN-OHL-S-2.0 with CopyFair reciprocity for commercial use", rules=CHARTER)
    tibi.start()

    step("Ivan and Maria join with invites; Tibi makes Ivan a reviewer (peer evaluation)")
    net.invite(tibi, ivan, maria)
    net.start(ivan, maria, bootstrap=tibi)
    net.converge(what="Ivan and Maria admitted")
    tibi.write("role", "Ivan", "grant", "reviewer")

    step("Everyone logs their work (hours claimed, by kind)")
    logged = {title: by_name[who].write("contribute", "--title", title, "--kind", kind, "--value", str(hours))
              for who, title, kind, hours in WORK}
    net.converge(what="the contributions and Ivan's reviewer role")

    step("Peer evaluation: reviewers accept the work; Ivan adjusts Tibi's claim from 10 to 8 hours")
    tibi.write("review", logged["Optical sensor PCB design, rev B"]["id"], "accept")
    tibi.write("review", logged["Assembled and tested 10 sensor units"]["id"], "accept")
    ivan.write("review", logged["Build guide with photos"]["id"], "accept")
    ivan.write("review", logged["Project coordination, Q3"]["id"], "accept", "--value", "8",
               "-m", "8 h matches the meeting notes")
    net.converge(what="the reviews")
    names = net.names_by_author()
    ledger = {names[row["author"]]: row["value"] for row in tibi.json("ledger", quiet=True)["ledger"]}
    expected = {"Ivan": 20 * 150 // 100, "Maria": 15 * 120 // 100 + 8 * 80 // 100, "Tibi": 8 * 100 // 100}
    require(ledger == expected, f"weighted ledger values {expected} (design 150 %, fabrication 120 %, "
                                "documentation 80 %, coordination at the default 100 %)")

    step("A lab selling sensors built from the designs pays 2,000 CAD back (CopyFair); Tibi distributes it")
    tibi.write("distribute", "2000", "--currency", "CAD")
    net.converge(what="the distribution")
    shares = maria.json("ledger", quiet=True)["distributions"][0]["shares"]
    require(sum(shares.values()) == 2000, f"the shares sum exactly to 2000 CAD: {sorted(shares.values())}")
    return maria


if __name__ == "__main__":
    sys.exit(main("An open value network like Sensorica", ["Tibi", "Ivan", "Maria"], scenario))
