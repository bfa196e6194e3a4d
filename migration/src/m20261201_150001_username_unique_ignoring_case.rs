//! Usernames unique regardless of case (`Admin` beside `admin` is a lookalike, not a new name).
//!
//! Existing names that differ only in case stop the migration with an error naming them: which
//! account keeps the name is the operator's call (rename the others with
//! `UPDATE users SET username = ... WHERE id = ...`, then start again). Nothing is renamed
//! behind anyone's back.
use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, Statement},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The index; `lower(username)` is spelled the same on SQLite and PostgreSQL, and the login
/// lookup uses the same expression so it is served by this index.
const CREATE: &str = "CREATE UNIQUE INDEX IF NOT EXISTS idx_users_username_lower ON users (lower(username))";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let clashes = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1 \
                 ORDER BY 1 LIMIT 20",
            ))
            .await?;
        if !clashes.is_empty() {
            let names: Vec<String> = clashes
                .iter()
                .filter_map(|row| row.try_get_by_index::<String>(0).ok())
                .collect();
            return Err(DbErr::Migration(format!(
                "usernames must be unique regardless of case, but several accounts share each of \
                 {names:?}; rename all but one of each (UPDATE users SET username = ... WHERE id = ...) \
                 and start again"
            )));
        }
        db.execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_users_username_lower")
            .await?;
        Ok(())
    }
}
