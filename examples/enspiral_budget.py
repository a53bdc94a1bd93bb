"""A collective budget like Enspiral's: the members decide together how the money is spent.

Enspiral (Aotearoa New Zealand) is a network of freelancers and small ventures who pool part
of their income and decide *together* what to do with it: members propose "buckets" (an
event, a shared tool, a stipend) and fund them, and surpluses go back to the people whose
work produced them. No single steward may spend the collective's money.

What this example shows, with three nodes on 127.0.0.1:

* **Acts that need a decision** — the charter says a distribution and a new budget line
  (`decide.distribution`, `decide.resource`) need a vote of all members; the founder's
  direct `p2pc distribute` is refused before signing (exit 7) with the rules' reason.
* **A budget line by vote** — Silvia proposes an "Events" line (a rivalrous resource: 500
  EUR per member per quarter, `p2pc proposal resource`); Rich's yes makes 2 of 3 and it is
  adopted at once; Silvia then draws from it, and a draw over the quota is refused.
* **A decision that ends** — Rich proposes sharing 3,000 EUR of surplus by the ledger, with
  a deadline a few seconds away. Alanna abstains (it counts for the quorum, not for either
  side); `p2pc inbox` shows Silvia what waits for her vote, `p2pc status` says *open*. She
  does not vote. After the deadline, her next entry closes the proposal on every node alike:
  1 yes, 0 no, quorum 2 of 3 met — adopted, and the surplus is shared by the ledger at that
  point. Her vote written afterwards is refused, whatever her clock says.
* **Governance you can read** — `p2pc proposals` and `p2pc proposal show` print each
  decision: what it decides, who voted what, the electorate, threshold, quorum and deadline.

Not expressible, so not faked: money itself lives outside the commons (a distribution
records who is owed what); a budget line's quota is per member per period, not one pot that
members draw down together.

Run: ``python examples/enspiral_budget.py`` (about 40 s).
"""

from __future__ import annotations

import sys
import time

from _harness import Cluster, Node, console, main, require, step

CHARTER = {
    "membership": {"policy": "invite", "admitters": ["steward"]},
    "review": {"roles": ["reviewer"], "accepts": 1},
    "decisions": {"deadline": 604800, "quorum": "1/2"},
    "decide": {"distribution": True, "resource": True},
    "electorate": {"distribution": ["member"], "resource": ["member"]},
}
# Seconds: soon, so the example need not wait a week, yet long enough for the abstention and
# the inbox check to land before it on a loaded two-core machine (8 s once did not).
DEADLINE_S = 20


def scenario(net: Cluster) -> Node:
    alanna, rich, silvia = net.nodes
    step("Alanna founds the collective; spending needs a decision of all members")
    net.found(alanna, "Enspiral Collective", description="Freelancers and ventures pooling income.",
              license="CC BY 4.0", rules=CHARTER)
    alanna.start()
    step("Rich and Silvia join with invites")
    net.invite(alanna, rich, silvia)
    net.start(rich, silvia, bootstrap=alanna)
    net.converge(what="Rich and Silvia admitted")

    step("Rich and Silvia log their work for the collective; Alanna (reviewer) accepts it")
    work = [rich.write("contribute", "--title", "Bookkeeping for Q3", "--value", "2"),
            silvia.write("contribute", "--title", "Onboarding retreat", "--value", "3")]
    net.converge(what="the contributions")
    for w in work:
        alanna.write("review", w["id"], "accept")
    net.converge(what="the reviews")

    step("Alanna tries to distribute the surplus alone: refused, it needs a decision")
    reason = alanna.refused("distribute", "3000", "--currency", "EUR")
    require("decide.distribution" in reason, "a steward cannot spend alone")

    step("Silvia proposes an Events budget line (500 EUR per member per quarter); Rich votes yes")
    line = silvia.write("proposal", "resource", "Events", "--quota", "500", "--period", "7776000", "--unit", "EUR",
                        "--title", "Events bucket")
    net.converge(what="the budget-line proposal")
    rich.write("vote", line["id"], "yes")
    net.converge(what="Rich's vote")
    shown = silvia.json("proposal", "show", line["id"])
    require(shown["status"] == "adopted" and shown["tally"]["yes"] == 2, "2 of 3 members: the line is open")
    silvia.write("resource", "use", "Events", "350", "--note", "Venue for the retreat")
    reason = silvia.refused("resource", "use", "Events", "200")
    require("exceeds the quota" in reason, "a draw over the quota is refused")

    step(f"Rich proposes sharing 3,000 EUR by the ledger, closing in {DEADLINE_S} s; Alanna abstains")
    share = rich.write("proposal", "distribute", "3000", "--currency", "EUR", "--deadline", str(DEADLINE_S),
                       "--title", "Q3 surplus")
    net.converge(what="the surplus proposal")
    alanna.write("vote", share["id"], "abstain")
    net.converge(what="Alanna's abstention")
    inbox = silvia.json("inbox")
    require([v["id"] for v in inbox["votes"]] == [share["id"]], "Silvia's inbox holds the open vote")
    require(silvia.outcome(share["id"]).get("decision") == "open", "p2pc status says open")
    console.print(silvia.run("proposals", "--open").stdout.rstrip(), markup=False, style="dim")

    step("The deadline passes; Silvia's next entry closes the vote on every node alike")
    deadline_ms = int(silvia.json("proposal", "show", share["id"], quiet=True)["deadline"])
    for _ in range(DEADLINE_S * 10 + 50):  # bounded: the deadline is DEADLINE_S seconds after the proposal
        if time.time() * 1000 > deadline_ms + 1000:
            break
        time.sleep(0.1)
    silvia.write("contribute", "--title", "Retreat photos", "--value", "1")
    late = silvia.refused("vote", share["id"], "no")
    require("already adopted" in late, "a vote after the close is refused")
    net.converge(what="the close")
    shown = rich.json("proposal", "show", share["id"])
    require(shown["status"] == "adopted" and shown["closed_by"] is not None,
            "closed at the deadline: 1 yes, 0 no, quorum 2 of 3 met")
    distributions = rich.json("ledger", quiet=True)["distributions"]
    require(distributions and distributions[-1]["amount"] == 3000, "the surplus is shared by the ledger")
    console.print("")
    console.print(rich.run("proposals").stdout.rstrip(), markup=False, style="dim")
    return rich


if __name__ == "__main__":
    sys.exit(main("A collective budget like Enspiral's", ["Alanna", "Rich", "Silvia"], scenario))
