//! Schema migrations, applied by the server at start and by `cargo run -p migration`.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261201_000001_admin_idempotency_keys;
mod m20261201_000018_inbox;
mod m20261201_150001_username_unique_ignoring_case;
mod m20261201_200001_notification_counts;

/// Every migration of Herald, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261201_000001_admin_idempotency_keys::Migration),
            Box::new(m20261201_000018_inbox::Migration),
            Box::new(m20261201_150001_username_unique_ignoring_case::Migration),
            Box::new(m20261201_200001_notification_counts::Migration),
        ]
    }
}
