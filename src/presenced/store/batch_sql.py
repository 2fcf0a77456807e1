"""The statements of a group-commit batch, for SQLite (``?`` parameters) and PostgreSQL (``$n``).

A batch of any number of writes runs a fixed number of statements; each
statement that writes rows takes all of the batch's rows of its table at once
(``executemany``). The row tuples come from ``presenced.store.batches``.
"""

from __future__ import annotations

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


#: A sweep's due users: the state alone (``rows.state_from_columns`` at 2).
_STATES = "SELECT p.user_id, p.tenant_id, " + ", ".join(f"p.{c}" for c in PRESENCE_STATE) + " FROM presences p "


def _facts_select(sessions: str) -> str:
    """Everything a decision needs about a user, in ``rows.stored_from_columns``'s order."""
    columns = ", ".join(
        ["p.user_id", "p.tenant_id"]
        + [f"p.{c}" for c in (*PRESENCE_FACTS, *PRESENCE_STATE)]
        + [f"m.{c}" for c in MAILBOX]
        + [sessions]
    )
    return f"SELECT {columns} FROM presences p LEFT JOIN mailbox_settings m ON m.user_id = p.user_id "


@dataclass(frozen=True)
class Statements:
    #: The users' facts; parameter: the user ids.
    facts: str
    #: The users' states; parameter: the user ids.
    states: str
    #: Due users' states (SQLite, where the batch holds the write lock): parameters: now, limit.
    due_states: str
    #: Is anyone due? (a sweep that finds nobody takes no write lock); parameter: now.
    any_due: str
    update_presence: str
    #: The state columns alone, for users whose row facts did not change (a session write, a sweep).
    update_state: str
    upsert_session: str
    delete_session: str
    upsert_mailbox: str
    insert_change: str
    #: Live subscriptions watching the users; parameters: the user ids, now.
    watchers: str
    insert_notification: str
    clock: str


def _marks(style: str, count: int, start: int = 1) -> list[str]:
    return ["?"] * count if style == "?" else [f"${n}" for n in range(start, start + count)]


def _statements(style: str, in_ids: str, sessions: str) -> Statements:
    def values(count: int) -> str:
        return ", ".join(_marks(style, count))

    assignments = ", ".join(
        f"{column} = {mark}"
        for column, mark in zip(
            (*PRESENCE_FACTS, *PRESENCE_STATE), _marks(style, len(PRESENCE_FACTS) + len(PRESENCE_STATE)), strict=True
        )
    )
    key = _marks(style, 1, len(PRESENCE_FACTS) + len(PRESENCE_STATE) + 1)[0]
    first, second = _marks(style, 2)
    return Statements(
        facts=_facts_select(sessions) + f"WHERE p.user_id {in_ids}",
        states=_STATES + f"WHERE p.user_id {in_ids}",
        due_states=_STATES + f"WHERE p.next_change_us <= {first} ORDER BY p.next_change_us LIMIT {second}",
        any_due=f"SELECT 1 FROM presences WHERE next_change_us <= {first} LIMIT 1",
        update_presence=f"UPDATE presences SET {assignments} WHERE user_id = {key}",
        update_state=(
            "UPDATE presences SET "
            + ", ".join(f"{c} = {m}" for c, m in zip(PRESENCE_STATE, _marks(style, len(PRESENCE_STATE)), strict=True))
            + f" WHERE user_id = {_marks(style, 1, len(PRESENCE_STATE) + 1)[0]}"
        ),
        upsert_session=(
            f"INSERT INTO presence_sessions (user_id, {', '.join(SESSION)}) VALUES ({values(len(SESSION) + 1)}) "
            "ON CONFLICT (user_id, app_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in SESSION[1:])
        ),
        delete_session=f"DELETE FROM presence_sessions WHERE user_id = {first} AND app_id = {second}",
        upsert_mailbox=(
            f"INSERT INTO mailbox_settings (user_id, {', '.join(MAILBOX)}) VALUES ({values(len(MAILBOX) + 1)}) "
            "ON CONFLICT (user_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in MAILBOX)
        ),
        insert_change=f"INSERT INTO presence_changes ({', '.join(CHANGE)}) VALUES ({values(len(CHANGE))})",
        watchers=(
            "SELECT su.user_id, s.id, s.notification_url FROM subscription_users su "
            "JOIN subscriptions s ON s.id = su.subscription_id "
            f"WHERE su.user_id {in_ids} AND s.expires_us > {second}"
        ),
        insert_notification=(
            f"INSERT INTO notifications ({', '.join(NOTIFICATION)}, next_attempt_us, attempts, state) "
            f"VALUES ({values(len(NOTIFICATION))}, 0, 0, 'pending')"
        ),
        clock="SELECT now_us FROM emulator_clock WHERE id = 1",
    )


SQLITE = _statements(
    "?",
    "IN (SELECT value FROM json_each(?1))",
    "(SELECT json_group_array(json_array(s.app_id, s.availability, s.activity, s.refreshed_us, s.expires_us)) "
    "FROM presence_sessions s WHERE s.user_id = p.user_id)",
)
POSTGRES = _statements(
    "$",
    "= ANY($1::text[])",
    "(SELECT json_agg(json_build_array(s.app_id, s.availability, s.activity, s.refreshed_us, s.expires_us)) "
    "FROM presence_sessions s WHERE s.user_id = p.user_id)::text",
)

#: PostgreSQL's row locks, taken before the facts are read. Under READ COMMITTED a statement that
#: waited for a lock sees the locked row as it now is but every other table as it was when the
#: statement began, so the facts are read by a statement of their own, after the locks.
#: Ordered by user id: batches in different processes lock in one order and never deadlock.
POSTGRES_LOCK = "SELECT user_id FROM presences WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE"
#: Due users for a sweeper that shares them with others: whoever holds a user, others skip it.
POSTGRES_LOCK_DUE_SKIP = (
    "SELECT user_id FROM presences WHERE next_change_us <= $1 ORDER BY next_change_us LIMIT $2 FOR UPDATE SKIP LOCKED"
)
#: Due users for a sweep that must store everything due (a clock move): it waits, in user-id order.
POSTGRES_LOCK_DUE_WAIT = "SELECT user_id FROM presences WHERE next_change_us <= $1 ORDER BY user_id LIMIT $2 FOR UPDATE"
