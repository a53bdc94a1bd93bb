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

* **A value equation, as rules** — the charter weighs design 150 %, fabrication 120 %,
  documentation 80 %, anything else 100 % (``[values]``); the contributions of whoever holds
  the network's ``lead`` role weigh 125 % (``[role_weights]``); one review may move a
  claimed value by at most 50 % (``equation.review_cap``); values decay with a half-life of
  a year (``equation.half_life``: in a run of seconds nothing visibly decays — the
  arithmetic is whole units, the same on every node); and a derivative design passes a
  quarter of its value to the designs it builds on (``equation.reference_share``).
* **Contribution accounting with peer evaluation** — Tibi, Ivan and Maria log their work in
  hours; reviewers accept it. Ivan first tries to cut Tibi's 10 h claim to 2 h: refused
  (beyond the 50 % cap); he adjusts it to 8 h.
* **Credit along references** — Maria's rev C board is derived from Ivan's rev B
  (``p2pc contribute --derives-from``, a checked link): when benefits are shared, a quarter
  of rev C's value goes to rev B, so Ivan is credited for the original.
* **A CopyFair payback flowing to contributors** — a company selling sensors built from
  the designs pays 2,000 CAD back into the network's pool (``p2pc pool pay --source payback
  --payer``); the company is never credited as a contributor for paying. Tibi distributes
  the 2,000 CAD from the pool: every node computes the same shares, summing exactly to
  2,000, and the distribution records the id of the equation it used.
* **Why each member gets what they get** — ``p2pc ledger --explain Ivan`` shows each of his
  contributions through the equation (weight, role weight, decay, credit in and out); the
  ledger shows what each member was paid to date; Ivan acknowledges receipt
  (``p2pc receipt``).

Not expressible, so not faked: the commons cannot enforce a license or collect the money
(the CopyFair terms are the genesis ``license`` text; the pool records what was paid in and
who is owed what, the money itself moves outside).

Run: ``python examples/sensorica.py`` (about 30 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, console, main, require, step

CHARTER = {
    "membership": {"policy": "open"},
    "contribution": {"policy": "members"},
    "review": {"roles": ["reviewer"], "accepts": 1, "rejects": 1, "self_review": False},
    "values": {"default": 100, "design": 150, "fabrication": 120, "documentation": 80},
    "roles": {"custom": ["lead"]},
    "role_weights": {"lead": 125},
    "equation": {"review_cap": 50, "half_life": 365, "reference_share": "1/4"},
    "pools": {"fund": "CAD"},
    "distribution": {"roles": ["steward"]},
}

WORK = [  # (who, title, kind, hours claimed)
    ("Ivan", "Optical sensor PCB design, rev B", "design", 20),
    ("Maria", "Assembled and tested 10 sensor units", "fabrication", 15),
    ("Maria", "Build guide with photos", "documentation", 8),
    ("Tibi", "Project coordination, Q3", "coordination", 10),
]
REV_B, REV_C = "Optical sensor PCB design, rev B", "Sensor PCB rev C: wider input range (derived from rev B)"


def scenario(net: Cluster) -> Node:
    tibi, ivan, maria = net.nodes
    by_name = {n.name: n for n in net.nodes}
    step("Tibi founds the network's commons with its value equation and a pool for paybacks")
    net.found(tibi, "Sensorica Optical Sensors", description="Open scientific instruments, built as a network.",
              license="CERN-OHL-S-2.0 with CopyFair reciprocity for commercial use", rules=CHARTER)
    tibi.start()

    step("Ivan and Maria join with invites; Tibi makes Ivan a reviewer and the design lead")
    net.invite(tibi, ivan, maria)
    net.start(ivan, maria, bootstrap=tibi)
    net.converge(what="Ivan and Maria admitted")
    tibi.write("role", "Ivan", "grant", "reviewer")
    tibi.write("role", "Ivan", "grant", "lead")

    step("Everyone logs their work (hours claimed, by kind)")
    logged = {title: by_name[who].write("contribute", "--title", title, "--kind", kind, "--value", str(hours))
              for who, title, kind, hours in WORK}
    net.converge(what="the contributions and Ivan's roles")

    step("Peer evaluation (Ivan's cut of Tibi's claim from 10 to 2 hours is beyond the cap; 8 hours is not); "
         "Maria designs rev C from Ivan's rev B, a checked reference")
    tibi.write("review", logged[REV_B]["id"], "accept")
    tibi.write("review", logged["Assembled and tested 10 sensor units"]["id"], "accept")
    ivan.write("review", logged["Build guide with photos"]["id"], "accept")
    refused = ivan.refused("review", logged["Project coordination, Q3"]["id"], "accept", "--value", "2")
    require("review_cap" in refused, "one review may not move a claim by more than 50 %")
    ivan.write("review", logged["Project coordination, Q3"]["id"], "accept", "--value", "8",
               "-m", "8 h matches the meeting notes")
    rev_c = maria.write("contribute", "--title", REV_C, "--kind", "design", "--value", "12",
                        "--derives-from", logged[REV_B]["id"])
    net.converge(what="the reviews and Maria's derivative")

    step("Tibi accepts rev C; a company selling sensors built from the designs pays 2,000 CAD back into the "
         "pool (CopyFair); Tibi distributes it by the value equation")
    tibi.write("review", rev_c["id"], "accept")
    tibi.write("pool", "pay", "fund", "2000", "--source", "payback", "--payer", "Acme Sensors Inc.")
    tibi.write("distribute", "2000", "--pool", "fund")
    net.converge(what="the review, the payback and the distribution")
    names = net.names_by_author()
    book = maria.json("ledger", quiet=True)
    ledger = {names[row["author"]]: row["value"] for row in book["ledger"]}
    expected = {"Ivan": 20 * 150 // 100, "Maria": 15 * 120 // 100 + 8 * 80 // 100 + 12 * 150 // 100,
                "Tibi": 8 * 100 // 100}
    require(ledger == expected, f"weighted ledger values {expected} (design 150 %, fabrication 120 %, "
                                "documentation 80 %, coordination at the default 100 %); paying back is not "
                                "contributing: Acme is not in the ledger")
    (paid,) = book["distributions"]
    shares = {names[a]: v for a, v in paid["shares"].items()}
    require(sum(shares.values()) == 2000 and set(shares) == {"Ivan", "Maria", "Tibi"},
            f"the shares sum exactly to 2000 CAD, among contributors only: {shares}")
    # The equation by hand: Ivan leads (125 %); rev C passes a quarter of its 18 to rev B.
    passed = (12 * 150 // 100) // 4
    weights = {"Ivan": 30 * 125 // 100 + passed, "Maria": 18 + 6 + 18 - passed, "Tibi": 8}
    why = maria.json("ledger", "--explain", "Ivan", quiet=True)
    require(why["total"] == weights["Ivan"] and why["commons_total"] == sum(weights.values()),
            f"Ivan weighs {weights['Ivan']} of {sum(weights.values())}: rev B at 125 % plus {passed} from rev C")
    require(why["equation"]["id"] == paid["equation"], "the distribution records the id of the equation it used")
    rev_b = next(c for c in why["contributions"] if c["title"] == REV_B)
    require([c["amount"] for c in rev_b["credit_in"]] == [passed], "rev B is credited by its derivative")
    console.print(ivan.run("ledger", "--explain", "Ivan").stdout.rstrip(), markup=False, highlight=False)

    step("Ivan acknowledges his share; the ledger shows what each was paid to date")
    ivan.write("receipt", paid["id"], "--note", "received, thanks")
    rows = {names[row["author"]]: row for row in ivan.json("ledger", quiet=True)["ledger"]}
    require(all(rows[n]["paid_to_date"] == shares[n] for n in shares), "paid to date is each one's share")
    require(rows["Ivan"]["acknowledged_to_date"] == shares["Ivan"], "Ivan's receipt is in the ledger")
    return maria


if __name__ == "__main__":
    sys.exit(main("An open value network like Sensorica", ["Tibi", "Ivan", "Maria"], scenario))
