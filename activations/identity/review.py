"""The review queue of probable matches: list it, and record a reviewer's decision.

A decision is a status on the pair in `matching.links` (accepted or rejected); every later
matching run keeps it, and the next build links (accepted) or unlinks (rejected) the two records.
"""

from __future__ import annotations

from datetime import datetime

from activations.engine.dialect import has_table, update
from activations.identity import links


class UnknownPair(LookupError):
    """A pair id that is not in matching.links."""


OWNERS = ("intermediate", "int_identity__customer_nodes")


def queue(con) -> list[dict]:
    """The pairs waiting for a decision, most probable first; pairs the rules already made one customer
    (at the last build) need no decision and are left out."""
    if not has_table(con, links.SCHEMA, "links"):
        return []
    columns = ("pair_id", "record_id_l", "record_id_r", "match_weight", "match_probability", "evidence", "scored_at")
    already_one = ""
    if has_table(con, *OWNERS):
        owners = ".".join(OWNERS)
        already_one = (f"and not exists (select 1 from {owners} as a inner join {owners} as b "
                       f"on a.customer_id = b.customer_id where a.node = l.record_id_l and b.node = l.record_id_r)")
    rows = con.execute(f"select {', '.join(f'l.{c}' for c in columns)} from {links.SCHEMA}.links as l "
                       f"where l.status = ? {already_one} order by l.match_probability desc, l.pair_id",
                       [links.REVIEW]).fetchall()
    return [dict(zip(columns, row, strict=True)) for row in rows]


def format_queue(pairs: list[dict], limit: int | None = None) -> str:
    """The queue as the CLI prints it: one pair a line, with what the decision commands need; the
    `limit` most probable when given (a big base leaves tens of thousands of pairs for review)."""
    if not pairs:
        return "no pairs waiting for review"
    shown = pairs if not limit else pairs[:limit]
    lines = [f"{len(pairs)} pair(s) waiting for review (attiva identity --accept PAIR_ID / --reject PAIR_ID)"
             + (f", the {len(shown)} most probable:" if len(shown) < len(pairs) else ":")]
    for p in shown:
        lines.append(f"  {p['pair_id']}  {p['record_id_l']}  ~  {p['record_id_r']}  "
                     f"weight {p['match_weight']:.2f}  probability {p['match_probability']:.3f}")
        if p["evidence"]:
            lines.append(f"      evidence: {p['evidence']}")
    if len(shown) < len(pairs):
        lines.append(f"  ... {len(pairs) - len(shown)} more (--limit 0 lists them all; matching.review_queue holds them)")
    return "\n".join(lines)


def decide(con, pair_id: str, status: str, now: datetime) -> dict:
    """Record `status` (accepted or rejected) for the pair; returns the pair as it was before."""
    if status not in links.DECIDED:
        raise ValueError(f"a decision is one of {', '.join(links.DECIDED)}, not {status!r}")
    found = None
    if has_table(con, links.SCHEMA, "links"):
        found = next(iter(con.execute(f"select record_id_l, record_id_r, status from {links.SCHEMA}.links "
                                      f"where pair_id = ?", [pair_id]).fetchall()), None)
    if found is None:
        raise UnknownPair(f"no pair {pair_id!r} in {links.SCHEMA}.links (see `attiva identity --review`)")
    update(con, f"{links.SCHEMA}.links", {"status": status, "decided_at": now, "updated_at": now},
           "pair_id = ?", [pair_id])
    return {"pair_id": pair_id, "record_id_l": found[0], "record_id_r": found[1], "status": found[2]}
