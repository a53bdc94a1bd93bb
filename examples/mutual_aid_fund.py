"""A mutual-aid solidarity fund: members pay in, a claim is decided together and paid out,
and the fund can never pay out what it does not hold.

Solidarity funds ("caisses de solidarité", sick-leave "broodfondsen" in the Netherlands,
the commonfare of the P2P literature) pool small monthly dues so that a member who falls
ill or loses work is carried by the others. What matters is that everyone can see what the
fund holds, who paid in, who was paid and why — and that it never promises more than it has.

What this example shows, with three nodes on 127.0.0.1:

* **A pool declared by the charter** — `pools.solidarity = "EUR"`: the commons holds a
  balance in euros, 0 until someone pays in.
* **Inflows that say who paid and why** — each member pays 100 EUR of dues (`p2pc pool
  pay`), and Alanna, the treasurer, records a 50 EUR grant from the neighbourhood council
  (`--payer`). Paying in is never counted as a contribution: the ledger stays empty.
* **A claim decided by the members** — Rich falls ill and claims 120 EUR (`p2pc pool spend
  … --propose`): a proposal the members vote on (`electorate.spend = ["member"]`); Rich,
  whom it pays, does not vote on it. Alanna's and Silvia's yes carry it and the 120 EUR is
  paid out at the deciding vote, on every node alike.
* **An overdraft refused** — Alanna tries to pay Silvia 1,500 EUR from the 230 left:
  refused before signing (exit 7) with the numbers.
* **The open book** — `p2pc pool show solidarity` lists every movement with the balance
  after it, the same on all three nodes.

Not expressible, so not faked: the euros themselves move through a bank; the commons keeps
the book every member can check and the rule that no payout exceeds the balance.

Run: ``python examples/mutual_aid_fund.py`` (about 30 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, console, main, require, step

CHARTER = {
    "membership": {"policy": "invite", "admitters": ["steward"]},
    "pools": {"solidarity": "EUR"},
    "treasury": {"roles": ["steward"]},
    "electorate": {"spend": ["member"]},
}


def _balance(node: Node) -> int:
    return int(node.json("pool", "show", "solidarity", quiet=True)["balance"])


def scenario(net: Cluster) -> Node:
    alanna, rich, silvia = net.nodes
    step("Alanna founds the fund; its charter declares a solidarity pool in EUR")
    net.found(alanna, "Neighbourhood Solidarity Fund", description="Dues carry a member who falls ill.",
              license="CC BY 4.0", rules=CHARTER)
    alanna.start()
    step("Rich and Silvia join with invites")
    net.invite(alanna, rich, silvia)
    net.start(rich, silvia, bootstrap=alanna)
    net.converge(what="Rich and Silvia admitted")

    step("Everyone pays 100 EUR of dues; Alanna records the council's 50 EUR grant")
    for member in (alanna, rich, silvia):
        member.write("pool", "pay", "solidarity", "100", "--source", "dues")
    alanna.write("pool", "pay", "solidarity", "50", "--source", "grant", "--payer", "Neighbourhood council")
    net.converge(what="the payments")
    require(_balance(silvia) == 350, "the fund holds 350 EUR on Silvia's node")
    require(not silvia.json("ledger", quiet=True).get("ledger"), "paying in is not a contribution")

    step("Rich falls ill and claims 120 EUR; the members decide (he does not vote on his own claim)")
    claim = rich.write("pool", "spend", "solidarity", "120", rich.author, "--reason", "two weeks of sick leave",
                       "--propose", "--title", "Sick leave for Rich")
    net.converge(what="the claim")
    refused = rich.refused("vote", claim["id"], "yes")
    require("does not vote on it" in refused, "Rich cannot vote on his own claim")
    alanna.write("vote", claim["id"], "yes")
    net.converge(what="Alanna's vote")
    require(silvia.json("proposal", "show", claim["id"], quiet=True)["status"] == "open",
            "one yes of the three members is not yet a majority")
    silvia.write("vote", claim["id"], "yes")
    net.converge(what="Silvia's vote")
    require(rich.json("proposal", "show", claim["id"], quiet=True)["status"] == "adopted", "the claim is adopted")
    require(_balance(rich) == 230, "120 EUR paid out: 230 EUR left")

    step("Alanna tries to pay Silvia 1,500 EUR from the 230 left: refused with the numbers")
    reason = alanna.refused("pool", "spend", "solidarity", "1500", silvia.author, "--reason", "roof repair")
    require("it holds 230 EUR, and 1500 EUR would leave -1270" in reason, "an overdraft is refused")

    step("The open book: every movement and the balance after it, the same on every node")
    console.print(silvia.run("pool", "show", "solidarity").stdout.rstrip(), markup=False, style="dim")
    books = [node.json("pool", "show", "solidarity", quiet=True)["flows"] for node in (alanna, rich, silvia)]
    require(books[0] == books[1] == books[2] and len(books[0]) == 5, "three nodes, one book of five movements")
    return silvia


if __name__ == "__main__":
    sys.exit(main("A mutual-aid solidarity fund", ["Alanna", "Rich", "Silvia"], scenario))
