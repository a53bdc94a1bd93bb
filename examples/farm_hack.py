"""An open design library like Farm Hack or L'Atelier Paysan: shared designs, derivatives, credit.

Farm Hack (US) and L'Atelier Paysan (France) are communities of farmers who design their own
tools and publish the plans for anyone to build, adapt and improve. A design is a
*non-rivalrous* resource: one farm building a roller-crimper takes nothing from the next.
What the community does need to track is lineage and credit: a derivative design (the same
tool adapted for a walk-behind tractor) builds on the original, and both the original's
designer and the adapter deserve recognition when the family of tools is funded.

What this example shows, with three nodes on 127.0.0.1:

* **Designs as non-rivalrous resources** — the charter lets any member add a resource
  (``resources.roles = ["member"]``); Jo publishes the roller-crimper plans, Paul later
  publishes his adaptation. Builds are recorded as resource use, without any quota: Paul and
  Nina each build from the plans, and nothing is ever refused.
* **Derivative designs that reference their originals** — each design's contribution
  references its plans (``--ref`` the resource entry), and Paul's derivative references the
  original design's contribution entry id (``--ref <entry id>``). The printed contributions
  table resolves those references.
* **Credit flowing to both** — Nina (reviewer) accepts both designs, so both designers hold
  ledger credit, weighted as design work (200 %). By the library's convention the original's
  designer also logs an ``upstream`` contribution referencing the derivative, which the
  reviewer accepts: reuse of a design credits its author again. Finally a grant for the tool
  family is distributed by the ledger, and both designers receive a share.

Not expressible, so not faked: the state machine does not propagate value along references
by itself (no automatic royalty from a derivative to its original); the upstream credit here
is an explicit, reviewed contribution. Plans themselves live outside the commons (the
``ref`` is a URI or hash); the commons records that they exist, who made them and who built them.

Run: ``python examples/farm_hack.py`` (about 30 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, main, require, step

CHARTER = {
    "membership": {"policy": "open"},
    "contribution": {"policy": "anyone"},
    "review": {"roles": ["reviewer"], "accepts": 1, "rejects": 1, "self_review": False},
    "resources": {"roles": ["member"], "use_roles": ["member"]},
    "values": {"default": 100, "design": 200, "upstream": 100},
    "distribution": {"roles": ["steward"]},
}


def scenario(net: Cluster) -> Node:
    nina, jo, paul = net.nodes
    step("Nina founds the tool library; any member may publish a design")
    net.found(nina, "Farm Tool Library", description="Open-source farm tools: plans, builds and improvements.",
              license="CC BY-SA 4.0 (plans), CERN-OHL-S-2.0 (hardware)", rules=CHARTER)
    nina.start()

    step("Jo (a vegetable grower) and Paul (a builder at a farmers' co-op) join with invites")
    net.invite(nina, jo, paul)
    net.start(jo, paul, bootstrap=nina)
    net.converge(what="Jo and Paul admitted")

    step("Jo publishes the roller-crimper plans: a non-rivalrous resource, and a design contribution")
    plans = jo.write("resource", "add", "Roller-crimper plans", "--non-rivalrous", "--unit", "build")
    original = jo.write("contribute", "--title", "Roller-crimper for no-till cover crops", "--kind", "design",
                        "--value", "10", "--ref", plans["id"])
    net.converge(what="the original design")

    step("Paul and Nina each build one from the plans (no quota: building takes nothing from anyone)")
    built = [paul.write("resource", "use", "Roller-crimper plans", "1", "--note", "Built at the co-op workshop"),
             nina.write("resource", "use", "Roller-crimper plans", "1", "--note", "Built for the demo farm")]
    require(all(b["outcome"]["status"] == "applied" for b in built), "both builds recorded, nothing refused")
    nina.write("review", original["id"], "accept", "-m", "Plans complete, tested on rye.")

    step("Paul adapts the design for walk-behind tractors: a derivative that references the original")
    paul.write("resource", "add", "Roller-crimper plans, walk-behind tractor version", "--non-rivalrous",
               "--unit", "build")
    derivative = paul.write("contribute", "--title", "Roller-crimper adapted for walk-behind tractors",
                            "--kind", "design", "--value", "6", "--ref", original["id"])
    net.converge(what="the derivative design")

    step("Nina accepts the derivative; Jo logs the reuse of her design as upstream credit, which Nina accepts")
    nina.write("review", derivative["id"], "accept", "-m", "Derivative of the original roller-crimper.")
    upstream = jo.write("contribute", "--title", "Upstream design reused by the walk-behind version", "--kind",
                        "upstream", "--value", "3", "--ref", derivative["id"])
    net.converge(what="the review and the upstream credit")
    nina.write("review", upstream["id"], "accept")

    step("A grant of 900 EUR for the roller-crimper family is distributed by the ledger")
    nina.write("distribute", "900", "--currency", "EUR")
    net.converge(what="the upstream review and the grant")
    names = net.names_by_author()
    shares = {names[a]: v for a, v in paul.json("ledger", quiet=True)["distributions"][0]["shares"].items()}
    require(shares.get("Jo", 0) > 0 and shares.get("Paul", 0) > 0, f"credit flows to both designers: {shares}")
    return paul


if __name__ == "__main__":
    sys.exit(main("An open design library like Farm Hack / L'Atelier Paysan", ["Nina", "Jo", "Paul"], scenario))
