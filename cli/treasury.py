"""``p2pc pool …``: the commons' pools, what they hold, and every movement in and out
(protocols/commons.md §8).

Writes go through the same local-write path as every command (signed, checked against the
fold before it is stored: a spend that would overdraw is refused with the numbers, exit 7).
Reading commands print what the fold computed, never a sum of their own."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .app import MAX_AMOUNT, ForceOption, HomeOption, JsonOption, app, command, emit, open_store, resolve_commons
from .decisions import DeadlineOption, TitleOption, _propose
from .governance import CommonsOption, _resolve_member, _write

pool_app = typer.Typer(help="The commons' pools (treasury, solidarity fund, budgets): create, pay in, spend, show.",
                       no_args_is_help=True)
app.add_typer(pool_app, name="pool")

PoolArgument = Annotated[str, typer.Argument(help="The pool's name (as declared by pools.<name>).")]
AmountArgument = Annotated[int, typer.Argument(help="Whole units of the pool's unit.", min=1, max=MAX_AMOUNT)]
SOURCES = ("dues", "grant", "payback", "donation", "other")


@command("list", app=pool_app)
def pool_list(commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the pools with their balances."""
    from p2pcommons.web import data as views

    with open_store(home, reader=True) as store:
        data = views.pools(store, resolve_commons(store, commons))
    rows = data["pools"]

    def human() -> None:
        if not rows:
            print("No pools (declare one with `p2pc pool create NAME --unit UNIT`).")
        for row in rows:
            print(f"{row['name']}  {row['balance']} {row['unit']}  (in {row['paid_in']}, out {row['paid_out']})")

    emit(data, as_json, human)


@command("show", app=pool_app)
def pool_show(name: PoolArgument, commons: CommonsOption = None, home: HomeOption = None,
              as_json: JsonOption = False) -> None:
    """Show a pool's balance and every movement in and out of it (the open book)."""
    from p2pcommons.web import data as views

    with open_store(home, reader=True) as store:
        data = views.pool(store, resolve_commons(store, commons), name)

    def human() -> None:
        unit = data["unit"]
        print(f"{name}: {data['balance']} {unit}")
        for f in data["flows"]:
            sign = "+" if f["flow"] == "in" else "-"
            who = f["party"] or "contributors"
            print(f"  {sign}{f['amount']} {unit}  {f['why']}  {who}  -> {f['balance']}  ({f['id']})")

    emit(data, as_json, human)


@command("create", app=pool_app)
def pool_create(name: PoolArgument,
                unit: Annotated[str, typer.Option("--unit", help="Its unit (e.g. EUR, hours).")],
                title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
                home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False) -> None:
    """Propose declaring a pool (a rule change: pools.NAME = UNIT, decided like any other)."""
    from p2pcommons.state.rules import parse_assignment

    key, value = parse_assignment(f"pools.{name}={unit}")
    body: dict[str, Any] = {"changes": {key: value}, "title": title or f"Create the pool {name} ({unit})"}
    if deadline is not None:
        import time

        body["deadline"] = int(time.time() * 1000) + deadline * 1000
    _write(home, commons, "rule_proposal", body, as_json, force=force)


@command("pay", app=pool_app)
def pool_pay(
    name: PoolArgument, amount: AmountArgument,
    source: Annotated[str, typer.Option("--source", help=f"Why: {', '.join(SOURCES)}.")] = "dues",
    payer: Annotated[str | None, typer.Option("--payer", help="Someone else paid (a grant, a company's "
                                              "payback): their name. Needs a treasury role.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the books.")] = None,
    commons: CommonsOption = None, home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Record a payment into a pool (never counted as a contribution)."""
    from p2pcommons.errors import UsageError

    if source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}.")
    body: dict[str, Any] = {"pool": name, "amount": amount, "source": source}
    if payer is not None:
        body["payer"] = payer
    if note:
        body["note"] = note
    _write(home, commons, "pay", body, as_json, force=force)


@command("spend", app=pool_app)
def pool_spend(
    name: PoolArgument, amount: AmountArgument,
    member: Annotated[str, typer.Argument(help="Who is paid (author id, prefix or name).")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="What for (recorded in the books).")],
    propose: Annotated[bool, typer.Option("--propose", help="Propose it for a decision (a solidarity claim, or "
                                          "when the rules say decide.spend) instead of paying directly.")] = False,
    title: TitleOption = "", deadline: DeadlineOption = None, commons: CommonsOption = None,
    home: HomeOption = None, as_json: JsonOption = False, force: ForceOption = False,
) -> None:
    """Pay a member from a pool (refused if it would overdraw), or propose it with --propose."""
    action = {"act": "spend", "pool": name, "amount": amount, "reason": reason}
    if propose:
        _propose(home, commons, action, title, deadline, as_json, force, member)
        return

    def build(store: Any, cid: Any, state: Any) -> tuple[dict[str, Any], list[Any] | None]:
        return {"pool": name, "amount": amount, "member": _resolve_member(state, member), "reason": reason}, None

    _write(home, commons, "spend", {}, as_json, build=build, force=force)
