//! The inbox: indexes for keyset pages and unread counts, and each user's muted types.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The list walks one user's rows by id, newest first (`ORDER BY id DESC`, `id < before_id`).
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_id")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        // The unread count and the "unread only" pages; it supersedes (user_id, is_read).
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_read_id")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::IsRead)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notifications_user_unread")
                    .table(Notifications::Table)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NotificationPreferences::Table)
                    .if_not_exists()
                    .col(integer(NotificationPreferences::UserId).primary_key())
                    // Comma-separated notification types, never pushed live to this user.
                    .col(string_len(NotificationPreferences::MutedTypes, 255).default(""))
                    .foreign_key(
                        ForeignKey::create()
                            .from(NotificationPreferences::Table, NotificationPreferences::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(NotificationPreferences::Table).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_unread")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::IsRead)
                    .to_owned(),
            )
            .await?;
        for name in ["idx_notifications_user_read_id", "idx_notifications_user_id"] {
            manager
                .drop_index(Index::drop().name(name).table(Notifications::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    UserId,
    Id,
    IsRead,
}

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    UserId,
    MutedTypes,
}
