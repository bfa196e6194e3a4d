//! `idempotency_keys` (the first answer to each admin create sent with an `Idempotency-Key`), and
//! the indexes the retention job deletes by.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(pk_auto(IdempotencyKeys::Id))
                    .col(integer(IdempotencyKeys::AdminId))
                    .col(string_len(IdempotencyKeys::Key, 255))
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(small_integer_null(IdempotencyKeys::Status))
                    .col(text_null(IdempotencyKeys::Body))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(IdempotencyKeys::Table, IdempotencyKeys::AdminId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per (admin, key): the loser of two concurrent first requests fails to insert.
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_admin_key")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::AdminId)
                    .col(IdempotencyKeys::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The retention job deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // The retention job deletes read notifications by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_read_created")
                    .table(Notifications::Table)
                    .col(Notifications::IsRead)
                    .col(Notifications::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // The retention job deletes expired logins by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_tokens_expires")
                    .table(AuthTokens::Table)
                    .col(AuthTokens::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_auth_tokens_expires")
                    .table(AuthTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notifications_read_created")
                    .table(Notifications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    AdminId,
    Key,
    Fingerprint,
    Status,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    IsRead,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    ExpiresAt,
}
