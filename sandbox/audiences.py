"""Hashed-identifier audiences (Meta custom audiences, Google user lists).

A member is matched by any of its identifiers, as the ad platforms match users:
adding a row that shares an identifier with a member updates that member, and
removing by any one identifier removes the whole member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Record = Any
TokensOf = Callable[[Record], list[str]]


class MemberSet:
    """Members of one audience: records plus an index from identifier token to member key."""

    def __init__(self, tokens_of: TokensOf) -> None:
        self._tokens_of = tokens_of
        self.members: dict[str, Record] = {}
        self._index: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.members)

    def add(self, record: Record) -> bool:
        """Add or update a member; True if it is new."""
        tokens = self._tokens_of(record)
        if not tokens:
            return False
        index = self._index
        keys = {index[t] for t in tokens if t in index}
        if not keys:
            key = tokens[0]
            self.members[key] = record
            for t in tokens:
                index[t] = key
            return True
        key = min(keys)
        for other in keys:
            self._drop(other)
        self.members[key] = record
        for t in tokens:
            index[t] = key
        return False

    def remove(self, record: Record) -> bool:
        """Remove the member(s) sharing any identifier with ``record``; True if one was removed."""
        keys = {self._index[t] for t in self._tokens_of(record) if t in self._index}
        for key in keys:
            self._drop(key)
        return bool(keys)

    def _drop(self, key: str) -> None:
        record = self.members.pop(key)
        for t in self._tokens_of(record):
            if self._index.get(t) == key:
                del self._index[t]

    def to_json(self) -> list[Record]:
        return list(self.members.values())

    @classmethod
    def from_json(cls, records: Iterable[Record], tokens_of: TokensOf) -> MemberSet:
        members = cls(tokens_of)
        for record in records:
            members.add(record)
        return members
