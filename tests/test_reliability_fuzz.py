"""Hostile input, fuzzed: the decoders not covered by test_fuzz.py and test_codec_properties.py.

Why: every byte that reaches these decoders comes from someone else (a pasted invite code, a
gossip message forwarded by any peer, a sync stream from any peer).  Whatever arrives, a
decoder may only raise the project's own errors (``P2PCError`` subclasses, which the node
turns into a refusal and a score penalty); anything else would crash a task, or the whole
daemon.  It must also answer promptly and allocate no more than a bounded amount per input,
so one message cannot hang a node or exhaust its memory.

Targets: invite codes (arbitrary text; character mutations of valid codes; payload
mutations re-checksummed so they reach the deeper checks; random well-formed payloads),
gossip announcements (``decode_announcement`` with signature checks, as the topic validator
runs it: arbitrary bytes, mutations of a valid one, random DAG-CBOR values in its shape),
and sync streams (byte mutations of a valid recorded session fed to both roles).  Entries
mutated from valid ones are fuzzed in test_codec_properties.py; bundles, config and key
files in test_fuzz.py.

``P2PC_FUZZ_EXAMPLES`` sets the inputs per target (default three times the hypothesis
profile's examples: 300 at the default profile, 30 at ``quick``).  Each input is timed and its
tracemalloc peak measured; the module prints per-target counts, slowest input and largest
peak.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pcommons import dagcbor
from p2pcommons.dagcbor import CID
from p2pcommons.entry import Signer, sign_entry
from p2pcommons.errors import P2PCError
from p2pcommons.protocols import sync
from p2pcommons.protocols.gossip import decode_announcement
from p2pcommons.protocols.invite import PREFIX, Invite, decode_invite, encode_invite, make_token

from .support.histories import linear_history, seed
from .support.signed import scaled

EXAMPLES = int(os.environ.get("P2PC_FUZZ_EXAMPLES", scaled(3)))  # 300 at the default profile, 30 quick
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
# pytest-timeout's 300 s default per test cut a 5,000-example run short on a loaded machine:
# allow 0.2 s per example (a hang still fails, through the per-input bound below)
# One worker for the whole module under `-n 2 --dist loadgroup`: test_report_counts reads the
# counters its neighbours fill in this process, and failed once when xdist ran it elsewhere.
pytestmark = [pytest.mark.timeout(max(300, int(EXAMPLES * 0.2))), pytest.mark.xdist_group("reliability_fuzz")]
MAX_SECONDS_PER_INPUT = 2.0  # generous: a loaded 2-core machine; a hang would take far longer
MAX_BYTES_PER_INPUT = 8 * 1024 * 1024  # tracemalloc peak of one decode (inputs are ≤ ~70 KB)

tried: Counter[str] = Counter()
slowest: dict[str, float] = {}
largest: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


def _probe(target: str, call: Callable[[], Any]) -> Any:
    """Run one decode: only P2PCError may escape, within time and allocation bounds."""
    tried[target] += 1
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    result: Any = None
    with contextlib.suppress(P2PCError):
        result = call()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    grown = max(0, peak - before)
    slowest[target] = max(slowest.get(target, 0.0), elapsed)
    largest[target] = max(largest.get(target, 0), grown)
    assert elapsed < MAX_SECONDS_PER_INPUT, f"{target}: one input took {elapsed:.2f} s"
    assert grown < MAX_BYTES_PER_INPUT, f"{target}: one input allocated {grown} bytes at peak"
    return result


def _mutate(blob: bytearray, data: st.DataObject, alphabet: bytes | None = None) -> bytes:
    """1–4 random edits: flip, set, cut, insert, delete, duplicate a slice."""
    for _ in range(data.draw(st.integers(1, 4))):
        if not blob:
            break
        where = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "dup"]))
        if action == "flip" and alphabet is None:
            blob[where] ^= 1 << data.draw(st.integers(0, 7))
        elif action in ("flip", "set"):
            blob[where] = data.draw(st.sampled_from(list(alphabet))) if alphabet else data.draw(st.integers(0, 255))
        elif action == "cut":
            del blob[where:]
        elif action == "insert":
            extra = (bytes(data.draw(st.lists(st.sampled_from(list(alphabet)), min_size=1, max_size=8)))
                     if alphabet else data.draw(st.binary(min_size=1, max_size=8)))
            blob[where:where] = extra
        elif action == "delete":
            del blob[where:where + data.draw(st.integers(1, 8))]
        else:
            blob[where:where] = blob[where:where + data.draw(st.integers(1, 64))]
    return bytes(blob)


# --- invite codes ----------------------------------------------------------------------------

COMMONS = linear_history(authors=1, per_author=0, label="fuzz-invite")[0].id
INVITER = Signer(seed("fuzz-inviter"))
ADDRS = ("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",)
VALID_CODES = [
    encode_invite(Invite(COMMONS, ADDRS, 0, 0, None)),
    encode_invite(Invite(COMMONS, ADDRS, 2**40, 3, make_token(INVITER, COMMONS, uses=3, expires=2**40))),
]
_B32 = b"abcdefghijklmnopqrstuvwxyz234567"


def _code_of(payload: bytes) -> str:
    data = payload + hashlib.sha256(payload).digest()[:4]
    return PREFIX + base64.b32encode(data).decode().lower().rstrip("=")


def _payload_of(code: str) -> bytes:
    body = code[len(PREFIX):].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))[:-4]


@fuzz
@given(text=st.text(max_size=600) | st.text(alphabet="p2c1abcdefghijklmnopqrstuvwxyz234567 \n", max_size=600))
def test_invite_arbitrary_text(text: str) -> None:
    _probe("invite: arbitrary text", lambda: decode_invite(text))


@fuzz
@given(which=st.sampled_from(VALID_CODES), data=st.data())
def test_invite_mutated_codes(which: str, data: st.DataObject) -> None:
    code = PREFIX.encode() + _mutate(bytearray(which[len(PREFIX):].encode()), data, alphabet=_B32)
    _probe("invite: mutated codes", lambda: decode_invite(code.decode()))


@fuzz
@given(which=st.sampled_from(VALID_CODES), data=st.data())
def test_invite_mutated_payloads_rechecksummed(which: str, data: st.DataObject) -> None:
    """A valid checksum over damaged contents: what a forger (not a bad copy) would send."""
    code = _code_of(_mutate(bytearray(_payload_of(which)), data))
    _probe("invite: mutated payloads (valid checksum)", lambda: decode_invite(code))


_scalars = (st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.text(max_size=20)
            | st.binary(max_size=40) | st.just(COMMONS) | st.just(b"\x00" * 32))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_token_fields = ("commons", "inviter", "nonce", "expires", "uses", "sig")


@fuzz
@given(fields=st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 2, -1, "1"]) | _values, "commons": st.just(COMMONS) | _values,
     "addrs": st.just(list(ADDRS)) | _values, "expires": st.integers(-5, 2**64 - 1) | _values,
     "uses": st.integers(-5, 2**64 - 1) | _values,
     "token": st.none() | _values | st.fixed_dictionaries({k: _values for k in _token_fields})}))
def test_invite_random_payloads(fields: dict[str, Any]) -> None:
    try:
        payload = dagcbor.encode(fields)
    except P2PCError:
        return
    _probe("invite: random well-formed payloads", lambda: decode_invite(_code_of(payload)))


# --- gossip announcements --------------------------------------------------------------------

HISTORY = linear_history(authors=3, per_author=3, label="fuzz-gossip")
GOSSIP_COMMONS: CID = HISTORY[0].id
VALID_ANNOUNCEMENT = dagcbor.encode({
    "commons": GOSSIP_COMMONS,
    "heads": [[e.author, e.seq, e.id] for e in HISTORY[-3:]],
    "entries": [e.raw for e in HISTORY[-3:]],
})


def _announce(data: bytes) -> None:
    decode_announcement(data, GOSSIP_COMMONS, verify=True)


def test_valid_announcement_decodes() -> None:
    """The mutation seed is accepted (so mutations start from something that passes)."""
    heads, entries = decode_announcement(VALID_ANNOUNCEMENT, GOSSIP_COMMONS, verify=True)
    assert len(heads) == 3 and len(entries) == 3


@fuzz
@given(data=st.binary(max_size=4096))
def test_gossip_arbitrary_bytes(data: bytes) -> None:
    _probe("gossip: arbitrary bytes", lambda: _announce(data))


@fuzz
@given(data=st.data())
def test_gossip_mutated_announcements(data: st.DataObject) -> None:
    blob = _mutate(bytearray(VALID_ANNOUNCEMENT), data)
    _probe("gossip: mutated announcements", lambda: _announce(blob))


_forger = Signer(seed("fuzz-forger"))
_other_commons = linear_history(authors=1, per_author=0, label="fuzz-elsewhere")[0]
_odd_entries = [
    HISTORY[1].raw[:-1] + bytes([HISTORY[1].raw[-1] ^ 1]),  # forged signature
    sign_entry(_forger, commons=_other_commons.id, seq=1, prev=None, kind="contribution",
               body={"title": "elsewhere"}, timestamp=1).raw,  # another commons
    HISTORY[1].raw + b"\x00",  # trailing byte
    b"\xa0", b"",
]


@fuzz
@given(fields=st.fixed_dictionaries({
    "commons": st.just(GOSSIP_COMMONS) | _values,
    "heads": st.lists(st.lists(_values, max_size=4) | st.tuples(st.binary(min_size=32, max_size=32),
                      st.integers(-3, 2**64 - 1), st.just(GOSSIP_COMMONS) | _values).map(list), max_size=6) | _values,
    "entries": st.lists(st.sampled_from([e.raw for e in HISTORY] + _odd_entries) | st.binary(max_size=64),
                        max_size=5) | _values,
}))
def test_gossip_random_announcements(fields: dict[str, Any]) -> None:
    try:
        data = dagcbor.encode(fields)
    except P2PCError:
        return
    _probe("gossip: random well-formed announcements", lambda: _announce(data))


# --- sync streams -----------------------------------------------------------------------------


def _recorded_session() -> tuple[bytes, bytes]:
    """A complete valid exchange: (bytes the initiator sent, bytes the responder sent)."""
    raws = [e.raw for e in HISTORY]
    init = sync.SyncSession(initiator=True, window=sync.MIN_WINDOW)
    resp = sync.SyncSession(initiator=False, window=sync.MIN_WINDOW)
    init.start([sync.Summary(GOSSIP_COMMONS)])
    sent_init = init.data_to_send()
    resp.receive_data(sent_init)
    _drain(resp)
    resp.start([sync.Summary(GOSSIP_COMMONS)])
    resp.send_totals(len(raws), sum(map(len, raws)))
    resp.send_batch(GOSSIP_COMMONS, raws[:5])
    resp.send_batch(GOSSIP_COMMONS, raws[5:])
    resp.send_done()
    sent_resp = resp.data_to_send()
    init.receive_data(sent_resp)
    _drain(init)
    init.data_to_send()  # its ACKs name bytes a fresh responder never sent: not part of the seed
    init.send_totals(0, 0)
    init.send_done()
    sent_init += init.data_to_send()
    return sent_init, sent_resp


def _drain(session: sync.SyncSession) -> list[Any]:
    """Consume events until more data is needed; returns them."""
    events: list[Any] = []
    for _ in range(10_000):
        event = session.next_event()
        if event is sync.NEED_DATA:
            return events
        events.append(event)
    raise AssertionError("a session produced 10,000 events from one input")


RECORDED = _recorded_session()


def _feed(initiator: bool, stream: bytes, chunk: int, *, eof: bool = True) -> int:
    """Feed ``stream`` to a fresh session of that role, answering as the node would
    (the responder sends its summaries once the initiator's have ended); returns batches seen."""
    session = sync.SyncSession(initiator=initiator, window=sync.MIN_WINDOW)
    started = initiator
    if initiator:
        session.start([sync.Summary(GOSSIP_COMMONS)])
    batches = 0
    pieces = [stream[i:i + chunk] for i in range(0, len(stream), chunk)] + ([b""] if eof else [])
    for piece in pieces:
        session.receive_data(piece)
        events = _drain(session)
        batches += sum(isinstance(e, sync.Batch) for e in events)
        if not started and any(isinstance(e, sync.SummariesEnd) for e in events):
            session.start([sync.Summary(GOSSIP_COMMONS)])
            started = True
            session.data_to_send()
    return batches


def test_recorded_session_replays_cleanly() -> None:
    """The mutation seeds are valid streams (the initiator's side receives both batches)."""
    assert _feed(True, RECORDED[1], 1000, eof=False) == 2
    assert _feed(False, RECORDED[0], 7, eof=False) == 0


@fuzz
@given(initiator=st.booleans(), chunk=st.integers(1, 5000), data=st.data())
def test_sync_mutated_streams(initiator: bool, chunk: int, data: st.DataObject) -> None:
    stream = _mutate(bytearray(RECORDED[1] if initiator else RECORDED[0]), data)
    _probe("sync: mutated valid streams", lambda: _feed(initiator, stream, chunk))


def test_report_counts() -> None:
    """Print per-target counts, slowest input and largest peak (for docs/reliability.md)."""
    lines = [f"  {k}: {v} inputs, slowest {slowest[k] * 1000:.1f} ms, peak {largest[k] / 1024:.0f} KiB"
             for k, v in sorted(tried.items())]
    print(f"\nfuzz inputs tried (P2PC_FUZZ_EXAMPLES={EXAMPLES}):\n" + "\n".join(lines))
    assert sum(tried.values()) > 0
