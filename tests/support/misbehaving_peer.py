"""A misbehaving peer for tests/test_reliability_hostile.py: real libp2p, its own process.

Usage: ``python misbehaving_peer.py MODE TARGET_MULTIADDR COMMONS_ID``.  Every run uses a
fresh key pair (a ban earned by one behaviour must not hide the next one), dials the target,
opens a real sync session on ``/p2pcommons/sync/1`` as the initiator, gets through the
summaries like an honest peer, then misbehaves in one way (MODE):

* ``noncanonical``: a batch holding a validly signed entry re-encoded non-canonically (its
  map header widened), the kind of malleated bytes that would give one entry two ids;
* ``oversized``: a frame announcing more than ``sync.MAX_FRAME`` bytes, then 64 KiB of it;
* ``truncated``: half of a valid batch frame, then end of stream;
* ``slow``: a batch frame announced, then one byte every ``--every`` seconds, forever (the
  per-read stall deadline never fires: only a whole-frame deadline can end it);
* ``foreign``: a batch of valid entries for a commons the target does not hold;
* ``fork``: two different, validly signed entries with one author and one sequence number
  for the target's commons (legitimate evidence: the target must keep and replicate both);
* ``summary-flood``: HELLO, then SUMMARY frames as fast as the target reads them, each of
  a new random commons with ``HEADS`` random heads (``summary-flood TARGET COMMONS PAGES
  HEADS``), never SUMMARIES_END: what once made a node keep every page (767 MiB in 13 s);
* ``flood``: ``--every`` (default 30) fresh identities, none of them a member, each a join
  and 19 contributions, every entry naming 16 parents that exist nowhere, all validly
  signed and honestly framed, then DONE (issue 11 item 8: the target keeps what the rules
  let strangers store, and is not made to hold the rest).

It prints one JSON line: its peer id, the mode, what the target did (``closed``/``reset``
and after how many seconds, or ``still open``) and how many bytes it managed to send.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def main() -> None:
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import ConnectionConfig
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as Noise
    from multiaddr import Multiaddr

    from p2pcommons.dagcbor import CID
    from p2pcommons.entry import Signer, sign_entry
    from p2pcommons.protocols import sync
    from tests.support.polling import poll_until

    mode, target, commons = sys.argv[1], sys.argv[2], CID.parse(sys.argv[3])
    every = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    limit = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    seed = os.urandom(32)
    key_pair = create_new_key_pair(seed)
    signer = Signer(seed)
    host = new_host(key_pair=key_pair, sec_opt={NOISE_ID: Noise(key_pair, new_x25519().private_key)},
                    connection_config=ConnectionConfig(max_connections_per_peer=1))
    info = info_from_p2p_addr(Multiaddr(target))
    report: dict[str, Any] = {"peer_id": host.get_id().to_base58(), "mode": mode, "sent": 0}

    async def hang_up(stream: Any) -> None:
        await stream.close()  # the target may dial back for anti-entropy: refuse politely

    host.set_stream_handler(TProtocol(sync.PROTOCOL_ID), hang_up)

    def contribution(on: CID, seq: int, title: str, prev: CID | None = None) -> bytes:
        return sign_entry(signer, commons=on, seq=seq, prev=prev, kind="contribution",
                          body={"title": title, "kind": "work", "value": 1}, timestamp=seq).raw

    async def handshake() -> tuple[Any, Any]:
        """Open a sync stream and play honest until both sides' summaries have ended."""
        with trio.fail_after(15):
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [TProtocol(sync.PROTOCOL_ID)])
        session = sync.SyncSession(initiator=True)
        session.start([sync.Summary(commons)])
        await stream.write(session.data_to_send())
        with trio.fail_after(15):
            for _ in range(10_000):
                session.receive_data(await stream.read(65536))
                events = []
                for _ in range(10_000):
                    event = session.next_event()
                    if event is sync.NEED_DATA:
                        break
                    events.append(event)
                if any(isinstance(e, sync.SummariesEnd) for e in events):
                    break
        return stream, session

    async def outcome(stream: Any, timeout: float, started: float) -> str:
        """Read (discarding) until the target ends the stream or ``timeout`` passes."""
        with trio.move_on_after(timeout):
            try:
                for _ in range(100_000):
                    if not await stream.read(65536):
                        return f"closed after {time.monotonic() - started:.1f} s"
            except Exception as exc:
                return f"reset after {time.monotonic() - started:.1f} s ({type(exc).__name__})"
        return "still open"

    async def send_batch(stream: Any, session: Any, on: CID, raws: list[bytes]) -> None:
        session.send_totals(len(raws), sum(map(len, raws)))
        session.send_batch(on, raws)
        data = session.data_to_send()
        await stream.write(data)
        report["sent"] += len(data)

    async def summary_flood(pages: int, heads: int, started: float) -> None:
        """Valid pages (sorted heads, distinct commons), so only the node's limits stop it."""
        from p2pcommons import dagcbor

        fake = sorted([os.urandom(32), 1, CID.of(os.urandom(8))] for _ in range(heads))
        template = sync.Summary(commons, tuple((a, s, i) for a, s, i in fake)).encode()
        assert template.endswith(commons.raw)  # keys sort length-first: "commons" comes last
        with trio.fail_after(15):
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [TProtocol(sync.PROTOCOL_ID)])
        await stream.write(sync.frame(sync.HELLO, dagcbor.encode({"v": 1, "window": sync.DEFAULT_WINDOW})))
        report["pages"] = 0
        try:
            for _ in range(pages):
                body = template[:-len(commons.raw)] + CID.of(os.urandom(16)).raw
                await stream.write(sync.frame(sync.SUMMARY, body))
                report["pages"] += 1
                report["sent"] += len(body)
            report["result"] = await outcome(stream, 15, started)
        except Exception as exc:
            report["result"] = f"reset after {time.monotonic() - started:.1f} s ({type(exc).__name__})"
        report["seconds"] = round(time.monotonic() - started, 1)
        report["disconnected"] = await poll_until(lambda: info.peer_id not in host.get_connected_peers(), 5)
        await host.close()

    async def run() -> None:
        async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            started = time.monotonic()
            if mode == "summary-flood":
                await summary_flood(int(every), int(limit), started)
                return
            stream, session = await handshake()
            if mode == "noncanonical":
                raw = contribution(commons, 1, "widened")
                assert 0xA0 <= raw[0] <= 0xB7, "entries are small maps"
                widened = b"\xb8" + bytes([raw[0] - 0xA0]) + raw[1:]  # same map, wider length head
                await send_batch(stream, session, commons, [widened])
            elif mode == "oversized":
                data = sync.encode_uvarint(sync.MAX_FRAME + 1) + bytes([sync.BATCH]) + b"\x00" * 65536
                try:
                    await stream.write(data)
                    report["sent"] += len(data)
                except Exception as exc:
                    report["write_error"] = type(exc).__name__
            elif mode == "truncated":
                raw = contribution(commons, 1, "cut short")
                session.send_totals(1, len(raw))
                session.send_batch(commons, [raw])
                data = session.data_to_send()
                await stream.write(data[: len(data) - 40])
                report["sent"] += len(data) - 40
                await stream.close()
            elif mode == "slow":
                await stream.write(sync.encode_uvarint(4096) + bytes([sync.BATCH]))
                for _ in range(int(limit / every) + 1):
                    if time.monotonic() - started > limit:
                        break
                    try:
                        await stream.write(b"\x00")
                        report["sent"] += 1
                    except Exception as exc:
                        report["result"] = f"reset after {time.monotonic() - started:.1f} s ({type(exc).__name__})"
                        break
                    with trio.move_on_after(every):
                        try:
                            if not await stream.read(65536):
                                report["result"] = f"closed after {time.monotonic() - started:.1f} s"
                                break
                        except Exception as exc:
                            report["result"] = (f"reset after {time.monotonic() - started:.1f} s "
                                                f"({type(exc).__name__})")
                            break
                report.setdefault("result", "still open")
            elif mode == "foreign":
                genesis = sign_entry(signer, commons=None, seq=1, prev=None, kind="genesis",
                                     body={"name": "elsewhere"}, timestamp=0)
                raws = [genesis.raw, contribution(genesis.id, 2, "not yours", genesis.id)]
                session.send_totals(len(raws), sum(map(len, raws)))
                # written by hand: the honest sender refuses a commons the session does not share
                data = session.data_to_send() + sync.frame(sync.BATCH, sync.encode_batch_body(genesis.id, raws))
                await stream.write(data)
                report["sent"] += len(data)
                report["foreign_commons"] = str(genesis.id)
            elif mode == "flood":
                from p2pcommons.entry import MAX_DEPS

                raws = []
                for i in range(int(every) if len(sys.argv) > 4 else 30):
                    who, prev = Signer(os.urandom(32)), None
                    for k in range(20):
                        deps = [CID(bytes([1, 0x71, 0x12, 32]) + os.urandom(32)) for _ in range(MAX_DEPS)]
                        kind, body = ("join", {"name": f"stranger {i}"}) if k == 0 else (
                            "contribution", {"title": f"spam {i}.{k} " + "x" * 300, "kind": "work", "value": 1})
                        entry = sign_entry(who, commons=commons, seq=k + 1, prev=prev, kind=kind, body=body,
                                           deps=deps, timestamp=k)
                        raws.append(entry.raw)
                        prev = entry.id
                session.send_totals(len(raws), sum(map(len, raws)))
                for start in range(0, len(raws), 100):
                    session.send_batch(commons, raws[start:start + 100])
                session.send_done()
                data = session.data_to_send()
                await stream.write(data)
                report["sent"] += len(data)
                report["entries"] = len(raws)
            elif mode == "fork":
                await send_batch(stream, session, commons, [contribution(commons, 1, "one way"),
                                                            contribution(commons, 1, "the other way")])
                await stream.write(session.data_to_send())
                session.send_done()
                await stream.write(session.data_to_send())
            else:
                raise SystemExit(f"unknown mode {mode}")
            if "result" not in report:
                report["result"] = await outcome(stream, 15 if mode != "fork" else 5, started)
            report["disconnected"] = await poll_until(lambda: info.peer_id not in host.get_connected_peers(), 5)
            await host.close()

    trio.run(run)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # tests.support
    main()
