"""The dashboard users table: ``users`` (user u32 -> msgpack :class:`core.users.User`) and
``user_emails`` (e-mail bytes -> user u32). Ids come from ``meta``'s ``user_seq``, never
reused."""

from __future__ import annotations

import lmdb
import msgpack

from core.store.slab import ID_VALUE, Slab, next_in_sequence
from core.users import User


class UserTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def next_id(self, txn: lmdb.Transaction) -> int:
        return next_in_sequence(self.slab, txn, b"user_seq")

    def put(self, txn: lmdb.Transaction, user: User) -> None:
        txn.put(ID_VALUE.pack(user.id), msgpack.packb(user.to_record()), db=self.slab.db[b"users"])
        txn.put(user.email.encode(), ID_VALUE.pack(user.id), db=self.slab.db[b"user_emails"])

    def by_email(self, txn: lmdb.Transaction, email: str) -> User | None:
        raw = txn.get(email.encode(), db=self.slab.db[b"user_emails"])
        if raw is None:
            return None
        record = txn.get(raw, db=self.slab.db[b"users"])
        return None if record is None else User.from_record(msgpack.unpackb(record))

    def all(self, txn: lmdb.Transaction) -> list[User]:
        cursor = txn.cursor(db=self.slab.db[b"users"])
        return [User.from_record(msgpack.unpackb(value)) for _, value in cursor]
