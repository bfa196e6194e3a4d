//! Each user's notification totals kept in a table of their own, so a page of the list does not
//! count the user's rows: at 100,000 notifications the two counts cost PostgreSQL some 20 ms a
//! page (`docs/inbox-query-plans.md`).
//!
//! Triggers keep `notification_counts` exact in the transaction that changes `notifications`,
//! whatever path the change takes (a save, the bulk insert, mark read or unread, a delete,
//! retention). On PostgreSQL they run once per statement, over its transition tables, and lock
//! the users' rows in `user_id` order, so two statements over many users cannot deadlock on them.
//! SQLite has only row triggers. Existing notifications are counted when the migration runs.
use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS notification_counts (
    user_id INTEGER NOT NULL PRIMARY KEY,
    total BIGINT NOT NULL DEFAULT 0,
    unread BIGINT NOT NULL DEFAULT 0
)";

const BACKFILL: &str = "INSERT INTO notification_counts (user_id, total, unread)
    SELECT user_id, COUNT(*), SUM(CASE WHEN is_read THEN 0 ELSE 1 END)
    FROM notifications GROUP BY user_id";

const SQLITE_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER IF NOT EXISTS notification_counts_insert AFTER INSERT ON notifications BEGIN
        INSERT INTO notification_counts (user_id, total, unread)
            VALUES (NEW.user_id, 1, CASE WHEN NEW.is_read THEN 0 ELSE 1 END)
            ON CONFLICT (user_id) DO UPDATE
            SET total = total + 1, unread = unread + excluded.unread;
    END",
    "CREATE TRIGGER IF NOT EXISTS notification_counts_delete AFTER DELETE ON notifications BEGIN
        UPDATE notification_counts
            SET total = total - 1, unread = unread - CASE WHEN OLD.is_read THEN 0 ELSE 1 END
            WHERE user_id = OLD.user_id;
    END",
    "CREATE TRIGGER IF NOT EXISTS notification_counts_read AFTER UPDATE OF is_read ON notifications
        WHEN OLD.is_read <> NEW.is_read BEGIN
        UPDATE notification_counts
            SET unread = unread + CASE WHEN NEW.is_read THEN -1 ELSE 1 END
            WHERE user_id = NEW.user_id;
    END",
];

const POSTGRES_TRIGGERS: [&str; 6] = [
    "CREATE OR REPLACE FUNCTION notification_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO notification_counts AS c (user_id, total, unread)
            SELECT user_id, COUNT(*), COUNT(*) FILTER (WHERE NOT is_read)
            FROM new_rows GROUP BY user_id ORDER BY user_id
            ON CONFLICT (user_id) DO UPDATE
            SET total = c.total + EXCLUDED.total, unread = c.unread + EXCLUDED.unread;
        RETURN NULL;
    END $$",
    "CREATE TRIGGER notification_counts_insert AFTER INSERT ON notifications
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION notification_counts_insert()",
    "CREATE OR REPLACE FUNCTION notification_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM notification_counts
            WHERE user_id IN (SELECT user_id FROM old_rows) ORDER BY user_id FOR UPDATE;
        UPDATE notification_counts AS c SET total = c.total - d.n, unread = c.unread - d.u
            FROM (SELECT user_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE NOT is_read) AS u
                  FROM old_rows GROUP BY user_id) AS d
            WHERE c.user_id = d.user_id;
        RETURN NULL;
    END $$",
    "CREATE TRIGGER notification_counts_delete AFTER DELETE ON notifications
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION notification_counts_delete()",
    "CREATE OR REPLACE FUNCTION notification_counts_read() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM notification_counts
            WHERE user_id IN (SELECT n.user_id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                              WHERE o.is_read <> n.is_read)
            ORDER BY user_id FOR UPDATE;
        UPDATE notification_counts AS c SET unread = c.unread + d.delta
            FROM (SELECT n.user_id, SUM(CASE WHEN n.is_read THEN -1 ELSE 1 END) AS delta
                  FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                  WHERE o.is_read <> n.is_read GROUP BY n.user_id) AS d
            WHERE c.user_id = d.user_id;
        RETURN NULL;
    END $$",
    "CREATE TRIGGER notification_counts_read AFTER UPDATE ON notifications
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION notification_counts_read()",
];

const DROP_SQLITE: [&str; 4] = [
    "DROP TRIGGER IF EXISTS notification_counts_insert",
    "DROP TRIGGER IF EXISTS notification_counts_delete",
    "DROP TRIGGER IF EXISTS notification_counts_read",
    "DROP TABLE IF EXISTS notification_counts",
];

const DROP_POSTGRES: [&str; 7] = [
    "DROP TRIGGER IF EXISTS notification_counts_insert ON notifications",
    "DROP TRIGGER IF EXISTS notification_counts_delete ON notifications",
    "DROP TRIGGER IF EXISTS notification_counts_read ON notifications",
    "DROP FUNCTION IF EXISTS notification_counts_insert()",
    "DROP FUNCTION IF EXISTS notification_counts_delete()",
    "DROP FUNCTION IF EXISTS notification_counts_read()",
    "DROP TABLE IF EXISTS notification_counts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// The count and the triggers commit together, on SQLite too.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let triggers: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                // Nothing may change `notifications` between the count and the triggers.
                db.execute_unprepared("LOCK TABLE notifications IN SHARE MODE").await?;
                &POSTGRES_TRIGGERS
            }
            _ => &SQLITE_TRIGGERS,
        };
        db.execute_unprepared(TABLE).await?;
        db.execute_unprepared(BACKFILL).await?;
        for statement in triggers {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &DROP_POSTGRES,
            _ => &DROP_SQLITE,
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
