"""Server-rendered pages: plain HTML from the same data as the API (:mod:`.data`), one
small inline script (no build step, nothing fetched from elsewhere) that re-reads the page
when the node says the state changed (server-sent events) and sends the buttons' reviews and
votes to the API.  Every value from the commons is escaped."""

from __future__ import annotations

import datetime
from html import escape
from typing import Any

from p2pcommons.shortid import AUTHOR_ID_PREFIX, ENTRY_ID_PREFIX, short_id

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2a22;background:#f6f8f5}
header{background:#2f5d3a;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#e8f3ea;text-decoration:none}header a.here{font-weight:bold;text-decoration:underline}
main{padding:1em 1.2em}table{border-collapse:collapse;margin:.5em 0 1.2em;background:#fff}
td,th{border:1px solid #cdd8cf;padding:.3em .6em;text-align:left;font-size:.92em}
code{font-size:.85em}.badge{padding:.1em .5em;border-radius:.8em;font-size:.85em}
.in-sync{background:#cdebd3}.behind{background:#f7e3b5}.offline{background:#e2e2e2}
.accepted,.adopted,.applied{color:#1d6b30;font-weight:bold}.rejected,.refused{color:#9b1c1c;font-weight:bold}
tr.rule-change{background:#fff4d6}.pending,.open{color:#8a5a00;font-weight:bold}
#message{padding:.4em 1.2em;min-height:1.2em}
button{margin-right:.3em}
svg.chart{background:#fff;border:1px solid #cdd8cf;margin:.5em 0}svg.chart text{font-size:11px;fill:#4a5a4f}
svg.chart .axis{stroke:#8a9a8f;stroke-width:1}svg.chart .series{fill:none;stroke-width:2.5}
ul.legend{list-style:none;padding:0;display:flex;gap:1.2em;flex-wrap:wrap}
ul.legend span.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
td.in{color:#1d6b30}td.out{color:#9b1c1c}
"""

SCRIPT = """
async function refresh(){
  const r = await fetch(location.href, {cache: 'no-store'});
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
  document.querySelector('main').replaceWith(doc.querySelector('main'));
}
const events = new EventSource('/events');
events.addEventListener('change', refresh);
document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button[data-post]');
  if (!b) return;
  b.disabled = true;
  const msg = document.getElementById('message');
  try {
    const r = await fetch(b.dataset.post, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                           body: b.dataset.body});
    const j = await r.json();
    if (j.ok) {
      const o = j.data.outcome;
      msg.textContent = o ? (o.status + (o.reason ? ': ' + o.reason : '')) : 'recorded';
      msg.className = o ? o.status : 'applied';
    } else {
      msg.textContent = j.error.message; msg.className = 'refused';
    }
  } catch (e) { msg.textContent = String(e); msg.className = 'refused'; }
  await refresh();
});
"""

TABS = (("", "Overview"), ("contributions", "Contributions"), ("proposals", "Proposals"), ("ledger", "Ledger"),
        ("pools", "Pools"), ("resources", "Resources"), ("history", "History"))


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def short(text: str) -> str:
    """An entry, commons or author id as the CLI shows it and takes it back (p2pcommons/
    shortid.py: ``p2pc log`` and ``p2pc members`` print the same); other text as it is."""
    return short_id(text) if text.startswith((ENTRY_ID_PREFIX, AUTHOR_ID_PREFIX)) else text


def _id_cell(full: str) -> str:
    """A table cell with an entry's short id (what ``p2pc review``, ``p2pc status``… take),
    the full id on hover."""
    return f'<td><code title="{_e(full)}">{_e(short(full))}</code></td>'


def person(author: str, names: dict[str, str]) -> str:
    name = names.get(author)
    return f'<span title="{_e(author)}">{_e(name) if name else "<code>" + _e(short(author)) + "</code>"}</span>'


def layout(title: str, commons: dict[str, Any] | None, tab: str, body: str) -> str:
    nav = ""
    if commons is not None:
        base = f"/c/{commons['id']}"
        nav = "".join(f'<a href="{base}/{path}"{" class=here" if path == tab else ""}>{label}</a>'
                      for path, label in TABS)
    nav += f'<a href="/peers"{" class=here" if tab == "peers" else ""}>Peers</a>'
    name = _e(commons["name"]) if commons is not None else "p2pcommons"
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)} · {name}</title>"
            f"<meta name=viewport content='width=device-width'><style>{STYLE}</style></head><body>"
            f'<header><strong><a href="/">{name}</a></strong>{nav}</header><div id=message></div>'
            f"<main>{body}</main><script>{SCRIPT}</script></body></html>")


def _post(url: str, body: str, label: str, cls: str) -> str:
    return f'<button class="{cls}" data-post="{_e(url)}" data-body="{_e(body)}">{_e(label)}</button>'


def home(commons: list[dict[str, Any]]) -> str:
    if not commons:
        return layout("Commons", None, "", "<p>This node holds no commons yet (<code>p2pc commons create</code> or "
                      "<code>p2pc join</code>).</p>")
    rows = "".join(f'<tr><td><a href="/c/{_e(c["id"])}/">{_e(c["name"])}</a></td><td>{c["member_count"]}</td>'
                   f'<td>{c["entry_count"]}</td><td><code>{_e(c["state_hash"][:16])}</code></td></tr>' for c in commons)
    return layout("Commons", None, "", "<h1>Commons on this node</h1><table><tr><th>name</th><th>members</th>"
                  f"<th>entries</th><th>state hash</th></tr>{rows}</table>")


def _badge(peer: dict[str, Any]) -> str:
    if not peer["connected"]:
        return '<span class="badge offline">offline</span>'
    if peer["in_sync"]:
        return '<span class="badge in-sync">in sync</span>'
    return '<span class="badge behind">syncing</span>'


def overview(state: dict[str, Any], members: list[dict[str, Any]], peers: list[dict[str, Any]]) -> str:
    names = {m["author"]: m["name"] for m in members if m["name"]}
    c = state["contribution_counts"]
    member_rows = "".join(f'<tr><td>{person(m["author"], names)}</td><td>{_e(", ".join(m["roles"]))}</td>'
                          f'<td>{_e(m["status"])}</td></tr>' for m in members)
    peer_rows = "".join(f'<tr class=peer><td>{_e(p.get("name") or p.get("short_id") or p["peer_id"])}</td>'
                        f"<td>{_badge(p)}</td><td>{_e(p.get('connection') or '')}</td></tr>" for p in peers)
    body = (f"<h1>{_e(state['name'])}</h1><table>"
            f"<tr><th>state hash</th><td><code id=state-hash>{_e(state['state_hash'])}</code></td></tr>"
            f"<tr><th>entries</th><td>{state['entry_count']} ({state['stable']['stable_entry_count']} stable, "
            f"{state['waiting_count']} waiting)</td></tr>"
            f"<tr><th>members</th><td>{state['member_count']} (pending joins: {state['pending_join_count']})</td></tr>"
            f"<tr><th>contributions</th><td>{c['accepted']} accepted, {c['pending']} pending, "
            f"{c['rejected']} rejected</td></tr></table>"
            f"<h2>Members</h2><table><tr><th>member</th><th>roles</th><th>status</th></tr>{member_rows}</table>"
            f"<h2>Peers</h2><table id=peers><tr><th>peer</th><th>sync</th><th>via</th></tr>{peer_rows}</table>")
    return layout("Overview", {"id": state["commons"], "name": state["name"]}, "", body)


def contributions(commons: dict[str, Any], rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    api = f"/api/v1/commons/{commons['id']}/contributions"

    def row(r: dict[str, Any]) -> str:
        actions = ""
        if r["status"] == "pending" and r["my_verdict"] is None:
            actions = (_post(f"{api}/{r['id']}/review", '{"verdict":"accept"}', "accept", "accept")
                       + _post(f"{api}/{r['id']}/review", '{"verdict":"reject"}', "reject", "reject"))
        elif r["my_verdict"]:
            actions = f"you: {_e(r['my_verdict'])}"
        reviews = ", ".join([person(a, names) + " ✓" for a in r["accepts"]]
                            + [person(a, names) + " ✗" for a in r["rejects"]])
        return (f'<tr id="c-{_e(r["id"])}"><td>{_e(r["title"])}</td><td>{person(r["author"], names)}</td>'
                f'<td>{_e(r["kind"])}</td><td>{r["claimed"]}</td><td>{r["value"]}</td>'
                f'<td class="status {_e(r["status"])}">{_e(r["status"])}</td><td>{reviews}</td>'
                f"<td>{actions}</td>{_id_cell(r['id'])}</tr>")

    queue = [r for r in rows if r["status"] == "pending"]
    done = [r for r in rows if r["status"] != "pending"]
    head = ("<tr><th>title</th><th>by</th><th>kind</th><th>claimed</th><th>value</th><th>status</th>"
            "<th>reviews</th><th></th><th>id</th></tr>")
    body = (f"<h1>Review queue ({len(queue)})</h1><table id=queue>{head}{''.join(map(row, queue))}</table>"
            f"<h2>Reviewed</h2><table id=reviewed>{head}{''.join(map(row, done))}</table>")
    return layout("Contributions", commons, "contributions", body)


def _when(ms: int | None) -> str:
    if not ms:
        return "none"
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _what(p: dict[str, Any], names: dict[str, str]) -> str:
    if p["act"] == "rules":
        return "rules: " + _e(", ".join(f"{k}={v}" for k, v in sorted(p["changes"].items())))
    action = p["action"] or {}
    if "member" in action:
        return f"{_e(p['act'])} {person(action['member'], names)}" + (
            f" ({_e(action.get('role') or action.get('reason') or '')})" if action.get("role") or action.get("reason")
            else "")
    return _e(p["act"]) + " " + _e(", ".join(f"{k}={v}" for k, v in sorted(action.items()) if k != "act"))


def proposals(commons: dict[str, Any], rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    api = f"/api/v1/commons/{commons['id']}/proposals"

    def row(p: dict[str, Any]) -> str:
        t = p["tally"]
        actions = ""
        if p["status"] == "open" and p["my_vote"] is None:
            actions = "".join(_post(f"{api}/{p['id']}/vote", f'{{"choice":"{c}"}}', c, f"vote-{c}")
                              for c in ("yes", "no", "abstain"))
        elif p["my_vote"]:
            actions = f"you: {_e(p['my_vote'])}"
        return (f'<tr id="p-{_e(p["id"])}"><td>{_e(p["title"]) or "<i>untitled</i>"}</td><td>{_what(p, names)}</td>'
                f'<td>{person(p["author"], names)}</td><td class="status {_e(p["status"])}">{_e(p["status"])}</td>'
                f'<td class=tally>{t["yes"]} yes · {t["no"]} no · {t["abstain"]} abstain '
                f'(of {p["electorate"]["size"]})</td><td>{_when(p["deadline"])}</td><td>{actions}</td></tr>')

    head = ("<tr><th>title</th><th>what</th><th>by</th><th>status</th><th>tally</th><th>deadline</th>"
            "<th></th></tr>")
    open_rows = [p for p in rows if p["status"] == "open"]
    closed = [p for p in rows if p["status"] != "open"]
    body = (f"<h1>Open proposals ({len(open_rows)})</h1><table id=open>{head}{''.join(map(row, open_rows))}</table>"
            f"<h2>Decided</h2><table id=decided>{head}{''.join(map(row, closed))}</table>")
    return layout("Proposals", commons, "proposals", body)


COLOURS = ("#2f7d4a", "#c0562b", "#3763a8", "#a33b8f", "#b08a12", "#23878c", "#6b4fc2", "#7a7a7a")
CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 260, 56, 16, 12, 30
MAX_MARKERS = 400  # points drawn as dots (with a tooltip); beyond that only the lines


def chart(series: list[dict[str, Any]], names: dict[str, str]) -> str:
    """The ledger's value over time per member as inline SVG (server-rendered: no script,
    no library): one step line per member — flat until a contribution of theirs is
    accepted, then up by its value — over a shared time axis, and a legend."""
    points = [p for s in series for p in s["points"]]
    if not points:
        return "<p id=ledger-chart-empty>No accepted contributions yet: nothing to draw.</p>"
    t0, t1 = min(p["time"] for p in points), max(p["time"] for p in points)
    top = max(p["value"] for p in points) or 1
    span = (t1 - t0) or 1
    width, height = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x(t: int) -> float:
        return round(PAD_L + (t - t0) * width / span if t1 > t0 else PAD_L + width / 2, 1)

    def y(v: int) -> float:
        return round(PAD_T + height - v * height / top, 1)

    right = PAD_L + width
    parts = [f'<line class=axis x1={PAD_L} y1={y(0)} x2={right} y2={y(0)} />',
             f'<line class=axis x1={PAD_L} y1={PAD_T} x2={PAD_L} y2={y(0)} />',
             f'<text x={PAD_L - 6} y={y(top) + 4} text-anchor=end>{top}</text>',
             f'<text x={PAD_L - 6} y={y(0) + 4} text-anchor=end>0</text>',
             f'<text x={PAD_L} y={CHART_H - 8}>{_e(_when(t0))}</text>']
    if t1 > t0:
        parts.append(f'<text x={right} y={CHART_H - 8} text-anchor=end>{_e(_when(t1))}</text>')
    legend = []
    markers = len(points) <= MAX_MARKERS
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        label = s["name"] or names.get(s["author"]) or short(s["author"])
        path = f"M{PAD_L},{y(0)}"  # nothing before their first accepted contribution
        for p in s["points"]:
            path += f" H{x(p['time'])} V{y(p['value'])}"
        path += f" H{right}"
        parts.append(f'<path class=series d="{path}" stroke="{colour}" data-author="{_e(s["author"])}">'
                     f"<title>{_e(label)}</title></path>")
        if markers:
            parts.extend(f'<circle cx={x(p["time"])} cy={y(p["value"])} r=3 fill="{colour}">'
                         f'<title>{_e(label)}: {p["value"]} on {_e(_when(p["time"]))}</title></circle>'
                         for p in s["points"])
        legend.append(f'<li><span class=swatch style="background:{colour}"></span>{_e(label)}</li>')
    svg = (f'<svg id=ledger-chart class=chart role=img aria-label="Accepted value over time, per member" '
           f'width={CHART_W} height={CHART_H} viewBox="0 0 {CHART_W} {CHART_H}" '
           f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')
    return svg + f"<ul class=legend>{''.join(legend)}</ul>"


def ledger(commons: dict[str, Any], data: dict[str, Any], names: dict[str, str]) -> str:
    rows = "".join(f'<tr><td>{person(r["author"], names)}</td><td>{r["accepted_count"]}</td><td>{r["value"]}</td>'
                   f'<td>{r["share_percent"]:.2f}%</td></tr>' for r in data["ledger"])
    dist = "".join(f'<tr><td><code>{_e(short(d.get("id", "")))}</code></td><td>{_e(d.get("amount", ""))} '
                   f'{_e(d.get("currency", ""))}</td><td>{len(d["shares"])}</td></tr>' for d in data["distributions"])
    body = (f"<h1>Ledger</h1><h2>Value over time</h2>{chart(data['series'], names)}"
            f"<table id=ledger><tr><th>member</th><th>accepted</th><th>value</th><th>share</th></tr>"
            f"{rows}</table><h2>Distributions</h2><table><tr><th>id</th><th>amount</th><th>members</th></tr>"
            f"{dist}</table>")
    return layout("Ledger", commons, "ledger", body)


RECENT_FLOWS = 20  # movements shown per pool (all of them: p2pc pool show, or the API)


def _party(party: str, names: dict[str, str]) -> str:
    if not party:
        return "the contributors"
    return person(party, names) if party.startswith("z6Mk") else _e(party)


def pools(commons: dict[str, Any], rows: list[dict[str, Any]], books: dict[str, list[dict[str, Any]]],
          names: dict[str, str]) -> str:
    """Each pool's balance, then its latest movements (newest first) with the balance after."""
    if not rows:
        return layout("Pools", commons, "pools", "<h1>Pools</h1><p id=no-pools>No pools yet: a rule change "
                      "declares one (<code>p2pc pool create NAME --unit UNIT</code>).</p>")
    table = "".join(f'<tr id="pool-{_e(p["name"])}"><td>{_e(p["name"])}</td><td class=balance>{p["balance"]} '
                    f'{_e(p["unit"])}</td><td>{p["paid_in"]}</td><td>{p["paid_out"]}</td></tr>' for p in rows)
    out = [f"<h1>Pools</h1><table id=pools><tr><th>pool</th><th>balance</th><th>paid in</th><th>paid out</th></tr>"
           f"{table}</table>"]
    for p in rows:
        flows = books.get(p["name"], [])
        recent = flows[::-1][:RECENT_FLOWS]
        lines = "".join(
            f'<tr><td class={f["flow"]}>{"+" if f["flow"] == "in" else "−"}{f["amount"]} {_e(p["unit"])}</td>'
            f'<td>{_e(f["why"])}</td><td>{_party(f["party"], names)}</td><td>{f["balance"]}</td>'
            f"{_id_cell(f['id'])}</tr>" for f in recent)
        more = f" (the latest {RECENT_FLOWS} of {len(flows)})" if len(flows) > RECENT_FLOWS else ""
        out.append(f"<h2>{_e(p['name'])}: recent movements{more}</h2>"
                   f'<table class=flows id="flows-{_e(p["name"])}"><tr><th>amount</th><th>why</th><th>who</th>'
                   f"<th>balance after</th><th>entry</th></tr>{lines or '<tr><td colspan=5>none yet</td></tr>'}"
                   "</table>")
    return layout("Pools", commons, "pools", "".join(out))


def _left(n: int | None, unit: str) -> str:
    return "—" if n is None else f"{n} {_e(unit)}"


def period_text(seconds: int) -> str:
    """A quota period for people: ``per week``, ``every 2 days``, ``every 90 s``; 0 is the
    whole life of the resource (``in all``)."""
    if not seconds:
        return "in all"
    for size, word in ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            n = seconds // size
            return f"per {word}" if n == 1 else f"every {n} {word}s"
    return f"every {seconds} s"


def resources(commons: dict[str, Any], rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    """Each resource: its quota and capacity, what is left this period (to you, to the
    whole commons) and who used how much over all periods."""
    def row(r: dict[str, Any]) -> str:
        period = period_text(r["period"])
        quota = f"{r['quota']} {_e(r['unit'])} per member {period}" if r["rivalrous"] else "no quota"
        if r["capacity"]:
            quota += f"; {r['capacity']} {_e(r['unit'])} for the commons {period}"
        used = ", ".join(f"{person(a, names)} {n}" for a, n in sorted(r["used"].items())) or "none yet"
        left = r["left_this_period"]
        return (f'<tr id="r-{_e(r["id"])}"><td>{_e(r["name"])}</td><td>{quota}</td>'
                f'<td class=left-mine>{_left(left["mine"], r["unit"])}</td>'
                f'<td class=left-commons>{_left(left["whole_commons"], r["unit"])}</td>'
                f"<td>{sum(r['used'].values())} {_e(r['unit'])}</td><td>{used}</td></tr>")

    body = ("<h1>Resources</h1><table id=resources><tr><th>resource</th><th>quota</th><th>left to you this period</th>"
            "<th>left to the commons this period</th><th>used (all periods)</th>"
            f"<th>by member</th></tr>{''.join(map(row, rows))}</table>")
    return layout("Resources", commons, "resources", body)


def history(commons: dict[str, Any], rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    """Who did what, when (newest first); adopted rule changes marked."""
    def row(r: dict[str, Any]) -> str:
        mark = ' class="rule-change"' if r["rule_change"] else ""
        what = _e(r["title"]) + (f" <b>({_e(r['decision'])})</b>" if r["decision"] else "")
        status = _e(r["status"] or "")
        reason = f": {_e(r['reason'])}" if r["reason"] and r["status"] == "rejected" else ""
        return (f"<tr{mark}><td>{_when(r['time'])}</td><td>{person(r['author'], names)}</td><td>{_e(r['kind'])}"
                f'{" ⚑ rule change" if r["rule_change"] else ""}</td><td>{what}</td>'
                f'<td class="{status}">{status}{reason}</td>{_id_cell(r["id"])}</tr>')

    body = ("<h1>History</h1><table id=history><tr><th>when</th><th>who</th><th>what</th><th></th><th>outcome</th>"
            f"<th>id</th></tr>{''.join(map(row, rows))}</table>")
    return layout("History", commons, "history", body)


def peers(rows: list[dict[str, Any]]) -> str:
    body = "".join(
        f'<tr class=peer><td>{_e(p.get("name") or "")}</td><td><code>{_e(p["peer_id"])}</code></td>'
        f'<td>{"connected" if p["connected"] else ("banned" if p["banned"] else "known")}</td>'
        f'<td>{_e(p.get("connection") or "")}</td><td>{p["syncs"]}</td><td>{_e(p["last_result"])}</td>'
        f'<td>{p["score"]}</td></tr>' for p in rows)
    return layout("Peers", None, "peers", "<h1>Peers</h1><table id=peers><tr><th>name</th><th>peer id</th>"
                  f"<th>state</th><th>via</th><th>syncs</th><th>last session</th><th>score</th></tr>{body}</table>")


def error(sentence: str) -> str:
    return layout("Error", None, "", f"<p class=refused>{_e(sentence)}</p>")


__all__ = ["chart", "contributions", "error", "history", "home", "layout", "ledger", "overview", "peers", "pools",
           "proposals", "resources"]
