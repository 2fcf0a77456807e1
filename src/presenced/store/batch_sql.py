"""The statements of a group-commit batch, for SQLite (``?`` parameters) and PostgreSQL (``$n``).

A batch of any number of writes runs a fixed number of statements; each
statement that writes rows takes all of the batch's rows of its table at once:
on SQLite by ``executemany`` (a loop in C over one prepared statement), on
PostgreSQL as one statement over arrays of the columns (``unnest``), which the
server executes once rather than once per row. The row tuples come from
``presenced.store.batches``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: The one-per-user facts in ``presences``, in the order ``batches._facts_columns`` gives them.
PRESENCE_FACTS = (
    "preferred_availability",
    "preferred_activity",
    "preferred_expires_us",
    "status_content",
    "status_content_type",
    "status_published_us",
    "status_expires_us",
    "status_expiry_time_zone",
    "manual_location_type",
    "manual_place_id",
    "automatic_location_type",
    "automatic_place_id",
)
PRESENCE_STATE = ("visible", "sequence", "changed_us", "next_change_us", "upcoming")
MAILBOX = (
    "time_zone",
    "auto_reply_status",
    "scheduled_start_us",
    "scheduled_start_time_zone",
    "scheduled_end_us",
    "scheduled_end_time_zone",
    "internal_reply_message",
    "external_reply_message",
    "external_audience",
)
SESSION = ("app_id", "availability", "activity", "refreshed_us", "expires_us")
CHANGE = ("tenant_id", "user_id", "sequence", "visible", "cause", "at_us")
NOTIFICATION = ("id", "subscription_id", "url", "user_id", "sequence", "visible", "created_us")

#: What every new row of a table starts with, besides the columns written.
_CONSTANTS = {"notifications": {"next_attempt_us": "0", "attempts": "0", "state": "'pending'"}}

#: The columns that hold integers (the others hold text), for PostgreSQL's typed arrays.
_INTEGERS = frozenset(
    {
        "preferred_expires_us",
        "status_published_us",
        "status_expires_us",
        "sequence",
        "changed_us",
        "next_change_us",
        "scheduled_start_us",
        "scheduled_end_us",
        "refreshed_us",
        "expires_us",
        "at_us",
        "created_us",
    }
)


#: A sweep's due users: the state alone (``rows.state_from_columns`` at 2).
_STATES = "SELECT p.user_id, p.tenant_id, " + ", ".join(f"p.{c}" for c in PRESENCE_STATE) + " FROM presences p "


def _facts_select(sessions: str) -> str:
    """Everything a decision needs about a user, in ``rows.stored_from_columns``'s order, and the
    row's version (last)."""
    columns = ", ".join(
        ["p.user_id", "p.tenant_id"]
        + [f"p.{c}" for c in (*PRESENCE_FACTS, *PRESENCE_STATE)]
        + [f"m.{c}" for c in MAILBOX]
        + [sessions, "p.version"]
    )
    return f"SELECT {columns} FROM presences p LEFT JOIN mailbox_settings m ON m.user_id = p.user_id "


@dataclass(frozen=True)
class Writes:
    """The statements that store a batch's rows, one per table; SQLite runs each with ``executemany``
    (one row a time), PostgreSQL once with an array of each column."""

    update_presence: str
    #: The state columns alone, for users whose row facts did not change (a session write, a sweep).
    update_state: str
    upsert_session: str
    delete_session: str
    upsert_mailbox: str
    #: In the batch's order: the change log's ids rise with a user's sequence numbers.
    insert_change: str
    insert_notification: str


@dataclass(frozen=True)
class Statements:
    #: The users' facts; parameter: the user ids.
    facts: str
    #: The versions of the users' rows; parameter: the user ids.
    versions: str
    #: The users' states; parameter: the user ids.
    states: str
    #: The states of those of the users that are due; parameters: the user ids, now.
    due_states: str
    #: Users that are due; parameters: now, limit (the index's order: the caller sorts them).
    due_ids: str
    #: Live subscriptions watching the users; parameters: the user ids, now.
    watchers: str
    clock: str
    writes: Writes


def _statements(mark: str, in_ids: str, sessions: str, writes: Writes) -> Statements:
    first, second = f"{mark}1", f"{mark}2"
    return Statements(
        facts=_facts_select(sessions) + f"WHERE p.user_id {in_ids}",
        versions=f"SELECT p.user_id, p.version FROM presences p WHERE p.user_id {in_ids}",
        states=_STATES + f"WHERE p.user_id {in_ids}",
        due_states=_STATES + f"WHERE p.user_id {in_ids} AND p.next_change_us <= {second}",
        due_ids=f"SELECT user_id FROM presences WHERE next_change_us <= {first} ORDER BY next_change_us LIMIT {second}",
        watchers=(
            "SELECT su.user_id, s.id, s.notification_url FROM subscription_users su "
            "JOIN subscriptions s ON s.id = su.subscription_id "
            f"WHERE su.user_id {in_ids} AND s.expires_us > {second}"
        ),
        clock="SELECT now_us FROM emulator_clock WHERE id = 1",
        writes=writes,
    )


# ---- SQLite: one row a time, the statement prepared once (executemany).


def _row_insert(table: str, columns: tuple[str, ...]) -> str:
    constants = _CONSTANTS.get(table, {})
    into = ", ".join((*columns, *constants))
    values = ", ".join((*("?" for _ in columns), *constants.values()))
    return f"INSERT INTO {table} ({into}) VALUES ({values})"


def _row_update(columns: tuple[str, ...]) -> str:
    """A ``presences`` row by user id (the last column); every write raises its version."""
    assignments = ", ".join(f"{c} = ?" for c in columns[:-1])
    return f"UPDATE presences SET {assignments}, version = version + 1 WHERE user_id = ?"


def _row_upsert(table: str, key: tuple[str, ...], columns: tuple[str, ...]) -> str:
    keep = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return f"{_row_insert(table, columns)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {keep}"


SQLITE = _statements(
    "?",
    "IN (SELECT value FROM json_each(?1))",
    "(SELECT json_group_array(json_array(s.app_id, s.availability, s.activity, s.refreshed_us, s.expires_us)) "
    "FROM presence_sessions s WHERE s.user_id = p.user_id)",
    Writes(
        update_presence=_row_update((*PRESENCE_FACTS, *PRESENCE_STATE, "user_id")),
        update_state=_row_update((*PRESENCE_STATE, "user_id")),
        upsert_session=_row_upsert("presence_sessions", ("user_id", "app_id"), ("user_id", *SESSION)),
        delete_session="DELETE FROM presence_sessions WHERE user_id = ? AND app_id = ?",
        upsert_mailbox=_row_upsert("mailbox_settings", ("user_id",), ("user_id", *MAILBOX)),
        insert_change=_row_insert("presence_changes", CHANGE),
        insert_notification=_row_insert("notifications", NOTIFICATION),
    ),
)


# ---- PostgreSQL: every row at once, as one array per column (unnest), executed once.


def _arrays(columns: tuple[str, ...], first: int = 1) -> str:
    """``unnest`` of one typed array parameter per column (from ``$first``), named as the columns,
    numbered (``n``)."""
    arrays = ", ".join(f"${n}::{'bigint' if c in _INTEGERS else 'text'}[]" for n, c in enumerate(columns, first))
    return f"unnest({arrays}) WITH ORDINALITY AS v({', '.join(columns)}, n)"


def _bulk_update(columns: tuple[str, ...], first: int = 1) -> str:
    """Rows of ``presences`` by user id (the last column); every write raises its version."""
    assignments = ", ".join(f"{c} = v.{c}" for c in columns[:-1])
    return (
        f"UPDATE presences AS p SET {assignments}, version = p.version + 1 "
        f"FROM {_arrays(columns, first)} WHERE p.user_id = v.user_id"
    )


def _bulk_insert(table: str, columns: tuple[str, ...], first: int = 1, conflict: str = "") -> str:
    constants = _CONSTANTS.get(table, {})
    into = ", ".join((*columns, *constants))
    values = ", ".join((*columns, *constants.values()))
    return f"INSERT INTO {table} ({into}) SELECT {values} FROM {_arrays(columns, first)} ORDER BY n{conflict}"


def _bulk_upsert(table: str, key: tuple[str, ...], columns: tuple[str, ...], first: int = 1) -> str:
    keep = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return _bulk_insert(table, columns, first, f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {keep}")


def _bulk_delete_sessions(first: int = 1) -> str:
    return (
        f"DELETE FROM presence_sessions AS s USING {_arrays(('user_id', 'app_id'), first)} "
        "WHERE s.user_id = v.user_id AND s.app_id = v.app_id"
    )


_UPDATE_PRESENCE = (*PRESENCE_FACTS, *PRESENCE_STATE, "user_id")
_UPDATE_STATE = (*PRESENCE_STATE, "user_id")
_SESSION_ROW = ("user_id", *SESSION)
_MAILBOX_ROW = ("user_id", *MAILBOX)

POSTGRES = _statements(
    "$",
    "= ANY($1::text[])",
    "(SELECT json_agg(json_build_array(s.app_id, s.availability, s.activity, s.refreshed_us, s.expires_us)) "
    "FROM presence_sessions s WHERE s.user_id = p.user_id)::text",
    Writes(
        update_presence=_bulk_update(_UPDATE_PRESENCE),
        update_state=_bulk_update(_UPDATE_STATE),
        upsert_session=_bulk_upsert("presence_sessions", ("user_id", "app_id"), _SESSION_ROW),
        delete_session=_bulk_delete_sessions(),
        upsert_mailbox=_bulk_upsert("mailbox_settings", ("user_id",), _MAILBOX_ROW),
        insert_change=_bulk_insert("presence_changes", CHANGE),
        insert_notification=_bulk_insert("notifications", NOTIFICATION),
    ),
)

#: How many columns (array parameters) each part of ``POSTGRES_WRITE_ALL`` takes, in its order:
#: ``Rows``' presences, states, session upserts, session deletes, mailboxes and changes.
WRITE_ALL_WIDTHS = (len(_UPDATE_PRESENCE), len(_UPDATE_STATE), len(_SESSION_ROW), 2, len(_MAILBOX_ROW), len(CHANGE))


def _write_all() -> str:
    """Every table's rows in one statement (one round trip), answering with the subscribers to notify.

    Each part is a data-modifying ``WITH`` query: each runs once and to the end, whether the main
    query reads it or not, and an empty array writes nothing. They change different rows, so that
    they see the same snapshot (none sees another's changes) makes no difference.
    """
    builders: tuple[Callable[[int], str], ...] = (
        lambda first: _bulk_update(_UPDATE_PRESENCE, first),
        lambda first: _bulk_update(_UPDATE_STATE, first),
        lambda first: _bulk_upsert("presence_sessions", ("user_id", "app_id"), _SESSION_ROW, first),
        _bulk_delete_sessions,
        lambda first: _bulk_upsert("mailbox_settings", ("user_id",), _MAILBOX_ROW, first),
        lambda first: _bulk_insert("presence_changes", CHANGE, first),
    )
    parts, first = [], 1
    for n, (build, width) in enumerate(zip(builders, WRITE_ALL_WIDTHS, strict=True)):
        parts.append(f"w{n} AS ({build(first)})")
        first += width
    return (
        f"WITH {', '.join(parts)} "
        "SELECT su.user_id, s.id, s.notification_url FROM subscription_users su "
        "JOIN subscriptions s ON s.id = su.subscription_id "
        f"WHERE su.user_id = ANY(${first}::text[]) AND s.expires_us > ${first + 1}"
    )


#: Parameters: the columns of every part (``WRITE_ALL_WIDTHS``), then the ids of the users that
#: logged changes and the time; the answer: (user, subscription, URL) of each live subscription
#: watching one of those users.
POSTGRES_WRITE_ALL = _write_all()

#: PostgreSQL's row locks, taken before the facts are read. Under READ COMMITTED a statement that
#: waited for a lock sees the locked row as it now is but every other table as it was when the
#: statement began, so the facts are read by a statement of their own, after the locks.
#: Ordered by user id: batches in different processes lock in one order and never deadlock.
#: It returns the rows' versions, as they are once locked.
POSTGRES_LOCK = "SELECT user_id, version FROM presences WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE"
_LOCK_DUE = "SELECT user_id FROM presences WHERE user_id = ANY($1::text[]) AND next_change_us <= $2 ORDER BY user_id "
#: A sweep's users that are still due, for a sweeper that shares them with others: whoever holds a
#: user, others skip it.
POSTGRES_LOCK_DUE_SKIP = _LOCK_DUE + "FOR UPDATE SKIP LOCKED"
#: The same for a sweep that must store everything due (a clock move): it waits, in user-id order.
POSTGRES_LOCK_DUE_WAIT = _LOCK_DUE + "FOR UPDATE"
