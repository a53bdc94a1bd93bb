"""A knowledge commons like Wikipedia: edit first, review afterwards, guidelines changed by vote.

Wikipedia's commons is an encyclopedia anyone may edit without asking: a reader fixes a date
without an account, and the edit is live for editors to check afterwards; editors (on
Wikipedia, patrollers and reviewers) keep good edits and revert vandalism; the editing
guidelines are themselves set by the community and change by consensus.

What this example shows, with three nodes (three people, three homes, three daemons on
127.0.0.1):

* **Open contributions without permission** — the charter sets ``contribution.policy =
  "anyone"``. Cy, a reader who is *not a member*, gets a copy of the encyclopedia as a bundle
  file (as one downloads a Wikipedia dump), records two edits, and starts a node: the edits
  spread to everyone, recorded as *pending* outside contributions.
* **Post-hoc review by editors** — Ada (the founder) grants Bo the ``reviewer`` role; the
  editors accept Cy's copy-edit, reject Cy's vandalism, and review each other's work (the
  charter forbids reviewing one's own: ``review.self_review = false``). Accepted work enters
  the contribution ledger weighted per kind (``values.article = 300`` etc.).
* **Editing guidelines as rules, one changed by vote** — the guidelines the software can
  enforce are rules in the state: who reviews, how many accepts accept an edit, weights per
  kind of edit. Bo proposes "new articles need two editors' approval" (``review.accepts =
  2``); it passes only when a majority of the stewards (Ada and Bo) said yes, and from its
  position on, Cy's new article needs two accepts.

Not expressible, so not faked: Wikipedia's guidelines are mostly prose (neutral point of
view, notability) that people apply when they review; the rules here are only the parts the
state machine enforces. The commons records *that* an edit was made (title, kind, value,
a ``ref`` to the text), not the article text itself.

Run: ``python examples/wikipedia.py`` (about 30 s).
"""

from __future__ import annotations

import sys

from _harness import Cluster, Node, main, require, step

CHARTER = {
    "membership": {"policy": "open"},
    "contribution": {"policy": "anyone"},
    "review": {"roles": ["reviewer"], "accepts": 1, "rejects": 1, "self_review": False},
    "rule_change": {"roles": ["steward"], "threshold": "majority"},
    "values": {"default": 100, "article": 300, "copyedit": 50, "citation": 100},
}


def scenario(net: Cluster) -> Node:
    ada, bo, cy = net.nodes
    step("Ada founds the encyclopedia with its editing guidelines as the charter (open to anyone's edits)")
    net.found(ada, "Open Encyclopedia", description="An encyclopedia anyone can edit; editors review afterwards.",
              license="CC BY-SA 4.0", rules=CHARTER, membership="open")
    ada.start()

    step("Bo joins with an invite from Ada's node and starts his own node")
    net.invite(ada, bo)
    bo.start(ada.addr)
    net.converge([ada, bo], what="Ada's node admitted Bo")

    step("Ada makes Bo an editor (reviewer) and a steward, so guideline changes need both of them")
    ada.write("role", "Bo", "grant", "reviewer")
    ada.write("role", "Bo", "grant", "steward")

    step("Cy, a reader with no account, downloads a copy of the encyclopedia as a bundle (a 'dump')")
    dump = net.path("encyclopedia.p2pcbundle")
    ada.json("export", "--commons", net.commons, "-o", str(dump))
    cy.json("import", str(dump))

    step("Cy edits without asking anyone: a copy-edit, and (someone on Cy's laptop) a bit of vandalism")
    fix = cy.write("contribute", "--title", "Fix the date of the Battle of Hastings (1066)", "--kind",
                   "copyedit", "--value", "2", "--ref", "https://example.org/wiki/Hastings?diff=1")
    junk = cy.write("contribute", "--title", "Replace the Oak article with 'lol'", "--kind", "article", "--value",
                    "9")
    require(cy.outcome(fix["id"])["status"] == "pending", "Cy's edit is recorded as pending: an outside contribution")
    cy.start(ada.addr)

    step("Meanwhile the editors write too")
    article = bo.write("contribute", "--title", "New article: Siuslaw River", "--kind", "article", "--value", "3",
                       "--ref", "https://example.org/wiki/Siuslaw_River")
    citation = ada.write("contribute", "--title", "Citations for the Oak article", "--kind", "citation")
    net.converge(what="every edit reached every node")

    step("Post-hoc review: editors keep the good edits and revert the vandalism")
    ada.write("review", fix["id"], "accept", "-m", "Thanks, sourced.")
    bo.write("review", junk["id"], "reject", "-m", "Vandalism, reverted.")
    ada.write("review", article["id"], "accept")
    bo.write("review", citation["id"], "accept")

    step("Bo proposes a guideline change: new articles need two editors' approval")
    proposal = bo.write("rules", "propose", "--set", "review.accepts=2", "--title",
                        "Two editors approve each new edit")
    require(proposal["outcome"]["status"] == "applied", "the proposal is open (1 of 2 stewards said yes)")
    net.converge(what="the reviews and the proposal")
    counts = net.counts(cy)
    require(counts == {"accepted": 3, "pending": 0, "rejected": 1},
            f"3 edits accepted and the vandalism rejected ({counts})")

    step("Ada votes yes; meanwhile Cy creates an account (joins; members' nodes admit automatically)")
    ada.write("rules", "vote", proposal["id"], "yes")
    cy.write("join", net.commons, "--name", "Cy")
    net.converge(what="the vote and Cy's admission")
    rules = cy.json("rules", "show", quiet=True)["rules"]
    require(rules["review"]["accepts"] == 2, "the guideline changed on every node: review.accepts = 2")

    step("Cy, now a member, writes an article; under the new guideline it needs two editors")
    new = cy.write("contribute", "--title", "New article: Roosevelt elk", "--kind", "article", "--value", "4")
    net.converge([cy, ada, bo], what="Cy's article")
    ada.write("review", new["id"], "accept")
    require(net.counts(ada)["pending"] == 1, "one accept is no longer enough: the article is still pending")
    bo.write("review", new["id"], "accept")
    require(net.counts(bo)["accepted"] == 4, "with Bo's accept too, the article is in")
    return cy


if __name__ == "__main__":
    sys.exit(main("A knowledge commons like Wikipedia", ["Ada", "Bo", "Cy"], scenario))
