"""A forest commons like the Siuslaw National Forest: a harvest plan, a charter, graduated sanctions.

The Siuslaw National Forest on the Oregon coast is managed with its community: loggers who
harvest under timber sales, ecologists who monitor streams and salmon habitat, rangers, and
watershed councils that bring them together around a plan. A forest is a *rivalrous*
resource — what one crew cuts, another cannot — so the plan sets the forest's total annual
cut and each crew's share of it, and breaking the plan (say, felling inside a stream's riparian buffer) meets
*graduated sanctions*, one of Elinor Ostrom's design principles for long-lived commons:
first a warning, then a suspension.

What this example shows, with three nodes on 127.0.0.1:

* **A charter** — the commons is founded with its rules as a TOML file (``p2pc commons create
  --rules charter.toml``): invite-only membership admitted by stewards, sanctions and
  resources decided by stewards, rule changes by a 2/3 majority of stewards.
* **Members and stewards** — Rosa, a ranger, founds the commons; Eli, an ecologist, and Dale,
  a logger, join with invite codes signed by Rosa (her node admits them). Rosa makes Eli a
  steward: the two of them are the watershed council.
* **A rivalrous resource with a quota per crew and a total annual cut** — the council adds
  "Timber harvest" with a quota of 120 mbf (thousand board feet) per member per year and a
  *capacity* of 300 mbf per year for the whole forest (``--capacity``): the plan's total cut.
  Dale records an 80 mbf harvest; his claim of 60 more in the same year goes over his quota
  and is **refused** by his own node before it is signed (exit code 7, with the numbers):
  every node's fold would reject it, so nothing is written.
* **The plan's total is never exceeded** — Eli's restoration-thinning crew and Rosa's
  salvage crew cut 110 and 100 mbf: 290 of 300. Each crew is within its own quota, yet
  Dale's next 30 (80 + 30 ≤ 120 for him) would take the forest to 320: refused with the
  numbers ("290 + 30 > 300 mbf per period for the whole commons"). The 10 left he may cut.
  Per-member quotas alone let four loggers cut 400 under a 300 plan; the capacity does not,
  however many crews there are and in whatever order their claims reach each node.
* **Contribution and review** — Eli's stream-temperature survey is accepted by Rosa.
* **A graduated sanction** — Eli warns Dale for felling inside the Lake Creek riparian buffer;
  after a second violation Rosa suspends him, and his next harvest claim is refused too.

Not expressible, so not faked: the CLI's founder is one person (the genesis lists the
founder's key as the only initial steward), so the council is formed by a role grant right
after founding; a member holds one role set, so "logger", "ecologist" and "ranger" are
names in the story, not roles the rules know (the rules know member, reviewer, steward).
With three nodes the crews are three members (a crew is whoever signs its harvest claims);
a period is a year counted from the epoch, not a fiscal year.

Run: ``python examples/siuslaw_forest.py`` (about 30 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, main, require, step

YEAR = 365 * 24 * 3600  # seconds: the plan's period (quotas and the total cut reset yearly)

CHARTER = {
    "membership": {"policy": "invite", "admitters": ["steward"]},
    "contribution": {"policy": "members"},
    "review": {"roles": ["reviewer"], "accepts": 1, "rejects": 1, "self_review": False},
    "rule_change": {"roles": ["steward"], "threshold": "2/3"},
    "resources": {"roles": ["steward"], "use_roles": ["member"]},
    "sanctions": {"roles": ["steward"]},
    "roles": {"roles": ["steward"]},
    "values": {"default": 100, "monitoring": 150, "restoration": 200},
}


def scenario(net: Cluster) -> Node:
    rosa, eli, dale = net.nodes
    step("Rosa, a ranger, founds the forest commons with the charter the community agreed on")
    net.found(rosa, "Siuslaw Forest Commons", description="Timber, streams and habitat of the Siuslaw watershed.",
              license="Public lands: harvest under the charter", rules=CHARTER)
    rosa.start()

    step("Eli (ecologist) and Dale (logger) join with invite codes Rosa's node signed and honours")
    net.invite(rosa, eli, dale)
    net.start(eli, dale, bootstrap=rosa)
    net.converge(what="Eli and Dale admitted by Rosa's node")

    step("The watershed council: Rosa makes Eli a steward and adds the harvest plan (per crew, and in total)")
    rosa.write("role", "Eli", "grant", "steward")
    rosa.write("resource", "add", "Timber harvest", "--rivalrous", "--quota", "120", "--capacity", "300",
               "--period", str(YEAR), "--unit", "mbf")
    survey = eli.write("contribute", "--title", "Stream temperature survey, Lake Creek", "--kind", "monitoring",
                       "--value", "4", "--ref", "https://example.org/siuslaw/surveys/lake-creek-2026.csv")
    net.converge(what="the council, the quota and Eli's survey")

    step("Dale harvests 80 mbf, then claims 60 more in the same year (120 is his quota)")
    first = dale.write("resource", "use", "Timber harvest", "80", "--note", "Sale unit 12, commercial thinning")
    require(first["outcome"]["status"] == "applied", "80 mbf recorded")
    before = len(dale.json_lines("log"))
    over = dale.refused("resource", "use", "Timber harvest", "60", "--note", "Sale unit 14")
    require("quota" in over and len(dale.json_lines("log")) == before,
            "the claim over quota is refused, nothing signed: " + over)

    step("Eli's thinning crew cuts 110 mbf and Rosa's salvage crew 100: 290 of the plan's 300")
    eli.write("resource", "use", "Timber harvest", "110", "--note", "Restoration thinning, unit 3")
    rosa.write("resource", "use", "Timber harvest", "100", "--note", "Salvage after the December storm")
    net.converge(what="the thinning and the salvage")
    plan = next(r for r in dale.json("resource", "list", quiet=True)["resources"] if r["name"] == "Timber harvest")
    require(plan["left_this_period"] == {"mine": 40, "whole_commons": 10}, "Dale may cut 40, the forest 10 more")

    step("Dale claims 30 more: within his quota, over the plan's total — refused with the numbers")
    total = dale.refused("resource", "use", "Timber harvest", "30", "--note", "Sale unit 14")
    require("290 + 30 > 300 mbf per period for the whole commons" in total, "the total cut is never exceeded")
    dale.write("resource", "use", "Timber harvest", "10", "--note", "Sale unit 14, reduced")

    step("Rosa accepts Eli's survey; Eli warns Dale for felling inside a riparian buffer")
    rosa.write("review", survey["id"], "accept", "-m", "Good baseline for the salmon plan.")
    eli.write("sanction", "Dale", "warning", "--reason", "Felled trees inside the Lake Creek riparian buffer.")
    net.converge(what="the last 10 mbf of the plan, the review and the warning")

    step("A second violation: Rosa suspends Dale; his next claim is refused")
    rosa.write("sanction", "Dale", "suspend", "--reason", "Second riparian buffer violation this season.")
    net.converge(what="the suspension")
    late = dale.refused("resource", "use", "Timber harvest", "10", "--note", "Salvage after windthrow")
    require("sanction" in late, "a suspended member's claim is refused: " + late)
    members = {m["name"]: m for m in rosa.json("members", quiet=True)["members"]}
    require(members["Dale"]["status"] == "suspended" and members["Dale"]["warning_count"] == 1,
            "Dale: one warning, then suspended")
    return eli


if __name__ == "__main__":
    sys.exit(main("A forest commons like the Siuslaw National Forest", ["Rosa", "Eli", "Dale"], scenario))
