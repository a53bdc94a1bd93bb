"""The dashboard in a real browser (issue 19): three real daemons in separate processes on
127.0.0.1, Debian's headless Chromium driven by selenium through Debian's chromium-driver.

Node A's dashboard accepts B's contribution with a click; B's dashboard shows it accepted
(live: its page is re-read on the node's server-sent event, never reloaded by the test).
The ledger draws one line per member
(inline SVG); the pools page shows a grant paid in and a spend, and the resources page what
is left this period, each arriving on an open page by itself.
Requests without the token and cross-origin writes — from another node's dashboard page in
the same browser, which holds both cookies — are refused.

``P2PC_SCREENSHOTS=1`` saves each page into docs/screenshots/ (for the tutorial); CI does not.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pcommons.shortid import short_id
from tests.support.localnode import Daemon, run, wait_for

pytestmark = pytest.mark.network

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WAIT = 60.0  # seconds a page may take to show what the test waits for (a loaded 2-core CI machine)

if CHROMIUM is None or DRIVER is None:
    pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _ui_port_0(home: Path) -> None:
    with open(home / "config.toml", "a", encoding="utf-8") as out:
        out.write("\n[ui]\nport = 0\n")


def _ui_url(home: Path) -> str:
    return str(run(home, "ui")["url"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("web")
    homes = {name: tmp / name for name in "abc"}
    for home in homes.values():
        run(home, "init")
        _ui_port_0(home)
    commons = run(homes["a"], "commons", "create", "Valley Wiki", "--membership", "open")["commons"]
    daemons: list[Daemon] = []
    try:
        daemons.append(Daemon(homes["a"], tmp / "a.log", sync_interval=2))
        addr = daemons[0].addr()
        for name, who in (("b", "Ben"), ("c", "Cleo")):
            code = run(homes["a"], "invite", "create", "--uses", "1")["code"]
            run(homes[name], "join", code, "--name", who)
            daemons.append(Daemon(homes[name], tmp / f"{name}.log", bootstrap=[addr], sync_interval=2))
        wait_for(lambda: run(homes["a"], "state", "--commons", commons)["member_count"] == 3
                 and run(homes["b"], "state", "--commons", commons)["member_count"] == 3, 60, "b and c to be admitted")
        yield {"homes": homes, "commons": commons, "daemons": daemons, "tmp": tmp}
    finally:
        for daemon in daemons:
            daemon.stop()


@pytest.fixture(scope="module")
def browser(cluster: dict[str, Any]) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                f"--user-data-dir={cluster['tmp'] / 'chromium-profile'}", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any) -> WebDriverWait[Any]:
    """Wait on the page, ignoring elements that a live update replaced under the check."""
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def _shot(driver: Any, name: str) -> None:
    if os.environ.get("P2PC_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _status_of(driver: Any, entry: str) -> str:
    cells = driver.find_elements(By.CSS_SELECTOR, f'tr[id="c-{entry}"] td.status')
    return str(cells[0].text) if cells else ""


def _has_contribution(home: Path, commons: str, entry: str) -> bool:
    return any(row["id"] == entry for row in run(home, "contributions", "--commons", commons)["contributions"])


def test_accept_on_a_shows_accepted_on_b(cluster: dict[str, Any], browser: Any) -> None:
    homes, commons = cluster["homes"], cluster["commons"]
    entry = run(homes["b"], "contribute", "--title", "Page: history of the river mill", "--kind", "writing",
                "--commons", commons)["id"]
    base_a, base_b = _ui_url(homes["a"]).split("?")[0], _ui_url(homes["b"]).split("?")[0]
    # B's dashboard first, left open in its own tab: it must turn 'accepted' by itself
    browser.get(_ui_url(homes["b"]))  # the token is exchanged for a cookie and dropped from the address
    assert "token=" not in browser.current_url
    browser.get(f"{base_b}c/{commons}/contributions")
    _wait(browser).until(lambda d: _status_of(d, entry) == "pending")
    tab_b = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(_ui_url(homes["a"]))
    _wait(browser).until(lambda d: "in sync" in d.find_element(By.ID, "peers").text)
    _shot(browser, "overview")
    browser.get(f"{base_a}c/{commons}/contributions")
    _wait(browser).until(lambda d: _status_of(d, entry) == "pending")
    # its short id, as p2pc prints and takes it (p2pc review ID accept)
    assert short_id(entry) in browser.find_element(By.CSS_SELECTOR, f'tr[id="c-{entry}"]').text.split()
    _shot(browser, "contributions")
    browser.find_element(By.CSS_SELECTOR, f'tr[id="c-{entry}"] button.accept').click()
    _wait(browser).until(lambda d: _status_of(d, entry) == "accepted")
    assert "applied" in browser.find_element(By.ID, "message").text
    browser.switch_to.window(tab_b)
    _wait(browser).until(lambda d: _status_of(d, entry) == "accepted")
    _shot(browser, "contributions-synced")
    browser.close()  # B's first tab
    browser.switch_to.window(browser.window_handles[0])
    # Cleo's contribution, accepted by Ana on the command line: two members in the ledger
    cleo = run(homes["c"], "contribute", "--title", "Photos of the weir", "--value", "3", "--commons", commons)["id"]
    wait_for(lambda: _has_contribution(homes["a"], commons, cleo), WAIT, "Cleo's contribution to reach a")
    run(homes["a"], "review", cleo, "accept")
    browser.get(f"{base_b}c/{commons}/ledger")
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ledger-chart path.series")) == 2)
    _wait(browser).until(lambda d: "Cleo" in d.find_element(By.ID, "ledger").text)
    authors = [row["author"] for row in run(homes["b"], "ledger", "--commons", commons)["ledger"]]
    lines = browser.find_elements(By.CSS_SELECTOR, "#ledger-chart path.series")
    drawn = [line.get_attribute("data-author") for line in lines]
    assert drawn == authors and len(authors) == 2  # one line per member of the ledger, in its order
    assert {"Ben", "Cleo"} <= set(browser.find_element(By.CSS_SELECTOR, "ul.legend").text.split())
    _shot(browser, "ledger")
    # a pool: declared by Ana (the only steward), then a grant paid in and a spend, each
    # arriving on Ben's open pools page by itself
    run(homes["a"], "pool", "create", "tools", "--unit", "EUR", "--commons", commons)
    browser.get(f"{base_b}c/{commons}/pools")
    _wait(browser).until(lambda d: d.find_elements(By.ID, "pool-tools"))
    run(homes["a"], "pool", "pay", "tools", "120", "--source", "grant", "--payer", "Valley Foundation",
        "--commons", commons)
    run(homes["a"], "pool", "spend", "tools", "20", "Ben", "--reason", "saw blades", "--commons", commons)
    _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#pool-tools td.balance").text == "100 EUR")
    flows = browser.find_element(By.ID, "flows-tools").text
    assert flows.index("saw blades") < flows.index("Valley Foundation"), flows  # newest first
    assert "Ben" in flows
    _shot(browser, "pools")
    # a resource with a quota and a capacity; Ben's own use shows what is left this period
    run(homes["a"], "resource", "add", "tractor", "--rivalrous", "--quota", "10", "--capacity", "40",
        "--period", "604800", "--unit", "hours", "--commons", commons)
    browser.get(f"{base_b}c/{commons}/resources")  # the page shows it when it arrives (live)
    _wait(browser).until(lambda d: "tractor" in d.find_element(By.ID, "resources").text)
    run(homes["b"], "resource", "use", "tractor", "3", "--commons", commons)
    _wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#resources td.left-mine").text == "7 hours")
    assert browser.find_element(By.CSS_SELECTOR, "#resources td.left-commons").text == "37 hours"
    _shot(browser, "resources")
    browser.get(f"{base_b}c/{commons}/history")  # newest first: Ben's use, then the resource
    _wait(browser).until(lambda d: [row.text.split()[4] for row in d.find_elements(By.CSS_SELECTOR, "#history tr")[1:3]]
                         == ["resource_use", "resource_add"])
    assert browser.find_elements(By.CSS_SELECTOR, "#history tr.rule-change")  # the pool's rule change, marked
    _shot(browser, "history")
    browser.get(f"{base_b}peers")
    _wait(browser).until(lambda d: d.find_element(By.ID, "peers").text.count("connected") >= 1)
    _shot(browser, "peers")


def _message(driver: Any) -> tuple[str, str]:
    box = driver.find_element(By.ID, "message")
    return str(box.get_attribute("class") or ""), str(box.text)


def test_vote_in_the_browser(cluster: dict[str, Any], browser: Any) -> None:
    homes, commons = cluster["homes"], cluster["commons"]
    run(homes["a"], "role", "Cleo", "grant", "steward", "--commons", commons)
    proposal = run(homes["a"], "rules", "propose", "--set", "review.accepts=2", "--title", "four eyes",
                   "--commons", commons)["id"]
    row = f'tr[id="p-{proposal}"]'
    # Ben is no steward: his click is refused before signing, and the page says the rule's sentence
    base_b = _ui_url(homes["b"]).split("?")[0]
    browser.get(_ui_url(homes["b"]))
    browser.get(f"{base_b}c/{commons}/proposals")
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} button.vote-yes"))
    browser.find_element(By.CSS_SELECTOR, f"{row} button.vote-yes").click()
    _wait(browser).until(lambda d: _message(d)[0] == "refused" and _message(d)[1])
    refusal = _message(browser)[1]
    _shot(browser, "proposals-refused")
    # Cleo is a steward: her yes (with Ana's) adopts the change
    base_c = _ui_url(homes["c"]).split("?")[0]
    browser.get(_ui_url(homes["c"]))
    browser.get(f"{base_c}c/{commons}/proposals")
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} button.vote-yes"))
    _shot(browser, "proposals")
    browser.find_element(By.CSS_SELECTOR, f"{row} button.vote-yes").click()
    _wait(browser).until(
        lambda d: "2 yes" in d.find_element(By.CSS_SELECTOR, f"{row} td.tally").text)
    shown = run(homes["c"], "proposal", "show", proposal)
    assert shown["tally"]["yes"] == 2 and shown["yes"] == sorted(shown["yes"]), (refusal, shown)
    assert run(homes["b"], "proposal", "show", proposal)["no"] == []


def _http(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_no_token_no_dashboard_and_no_cross_origin_writes(cluster: dict[str, Any], browser: Any) -> None:
    homes, commons = cluster["homes"], cluster["commons"]
    full = _ui_url(homes["a"])
    base, token = full.split("?token=")
    port = base.rstrip("/").rsplit(":", 1)[1]
    cookie = f"p2pc_ui_{port}={token}"
    assert _http(base)[0] == 401
    assert _http(f"{base}api/v1/commons")[0] == 401
    assert _http(f"{base}?token=wrong")[0] == 403
    assert _http(f"{base}api/v1/commons", headers={"Cookie": f"p2pc_ui_{port}=wrong"})[0] == 401
    status, raw = _http(f"{base}api/v1/commons", headers={"Cookie": cookie})
    assert status == 200 and json.loads(raw)["data"]["commons"][0]["id"] == commons
    entry = run(homes["b"], "contribute", "--title", "a page nobody reviewed", "--commons", commons)["id"]
    wait_for(lambda: entry in _http(f"{base}api/v1/commons/{commons}/contributions",
                                    headers={"Cookie": cookie})[1].decode(), WAIT, "the contribution to reach a")
    review = f"{base}api/v1/commons/{commons}/contributions/{entry}/review"
    write = {"Cookie": cookie, "Content-Type": "application/json"}
    body = b'{"verdict": "accept"}'
    # with the cookie, but from another origin, or with no Origin at all, or under a foreign Host
    assert _http(review, method="POST", headers={**write, "Origin": "http://evil.example"}, body=body)[0] == 403
    assert _http(review, method="POST", headers=write, body=body)[0] == 403
    assert _http(review, method="POST", headers={**write, "Host": "evil.example", "Origin": "http://evil.example"},
                 body=body)[0] == 403
    # in the browser: node B's dashboard page (another origin on 127.0.0.1, same site, so A's
    # SameSite cookie goes along) posts to A's API; A refuses it and sends no CORS header
    base_b = _ui_url(homes["b"]).split("?")[0]
    browser.get(_ui_url(homes["a"]))  # the browser holds A's cookie
    browser.get(_ui_url(homes["b"]))
    browser.get(f"{base_b}peers")
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', mode: 'no-cors', credentials: 'include',"
        " headers: {'Content-Type': 'text/plain'}, body: arguments[1]})"
        ".then(r => done(r.type), e => done('error: ' + e));", review, body.decode())
    assert result in ("opaque", "error: TypeError: Failed to fetch"), result
    rows = json.loads(_http(f"{base}api/v1/commons/{commons}/contributions", headers={"Cookie": cookie})[1])
    row = next(r for r in rows["data"]["contributions"] if r["id"] == entry)
    assert row["status"] == "pending" and row["accepts"] == []
    # a same-origin write that the rules refuse gives the rule's sentence, and stores nothing
    own = _http(review, method="POST", headers={**write, "Origin": base.rstrip("/")}, body=body)
    assert own[0] == 200, own
    again = _http(review, method="POST", headers={**write, "Origin": base.rstrip("/")}, body=body)
    assert again[0] == 409 and json.loads(again[1])["error"]["code"] == 7, again
    history = json.loads(_http(f"{base}api/v1/commons/{commons}/history?limit=1", headers={"Cookie": cookie})[1])
    assert [(e["kind"], e["status"]) for e in history["data"]["entries"]] == [("review", "applied")]
    assert _http(f"{base}api/v1/commons/{commons}/history?limit=0", headers={"Cookie": cookie})[0] == 400
    status, reply = _http(f"{base}api/v1/commons/{commons}/state", headers={"Cookie": cookie})
    assert status == 200 and "access-control-allow-origin" not in reply.decode().lower()
