"""Decoding the next batch in a thread while one is checked and stored (``ingest(...,
decode_ahead=True)``, what the ingest process does) is a fast path beside decoding each
batch in line: it must accept, reject and report exactly the same, in the same order,
and leave the same store, whatever the batches hold (gaps, corrupted signatures, repeats,
another commons' entries, bytes that are no entry at all) and wherever they are cut.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcommons.ingest import IngestReport, ingest

from .support.signed import History, new_store, scaled
from .test_ingest import damaged

garbage = st.one_of(st.binary(max_size=40), st.just(b"\xa0"), st.just(b"\xaa\x63seq"))


@st.composite
def _cases(draw: st.DrawFn) -> tuple[History, list[bytes], int, bool]:
    history, raws, _ = draw(damaged())
    for _ in range(draw(st.integers(0, 3))):  # bytes that decode to no entry, anywhere
        raws.insert(draw(st.integers(0, len(raws))), draw(garbage))
    return history, raws, draw(st.integers(1, 8)), draw(st.booleans())


@settings(max_examples=scaled(1), deadline=None)
@given(_cases())
def test_decoding_ahead_gives_the_same_reports_and_store(tmp_path: Path,
                                                         case: tuple[History, list[bytes], int, bool]) -> None:
    history, raws, batch_size, one_transaction = case
    outcomes = []
    for ahead in (False, True):
        seen: list[tuple[list[bytes], list[tuple[str, str]], int, int]] = []

        def note(report: IngestReport, seen: list[tuple[list[bytes], list[tuple[str, str]], int, int]] = seen) -> None:
            seen.append(([e.id.raw for e in report.added], [(type(e).__name__, str(e)) for e in report.rejected],
                         report.duplicates, report.signatures_checked))

        with new_store(tmp_path) as store:
            total = ingest(store, raws, commons=history.commons, batch_size=batch_size,
                           one_transaction=one_transaction, decode_ahead=ahead, on_batch=note)
            stored = [bytes(row[0]) for row in store.db.execute("SELECT id FROM entries ORDER BY n")]
            outcomes.append((seen, total.added_count, total.duplicates, total.declined, total.deferred,
                             [(type(e).__name__, str(e)) for e in total.rejected], stored))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0], "no batch was ingested"
