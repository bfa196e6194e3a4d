//! Users, login credentials, per-user notifications and global announcements.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(pk_auto(Users::Id))
                    .col(string_len_uniq(Users::Username, 150))
                    .col(string_len(Users::PasswordHash, 255))
                    .col(string_len(Users::Role, 16))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthTokens::Table)
                    .if_not_exists()
                    .col(pk_auto(AuthTokens::Id))
                    .col(integer(AuthTokens::UserId))
                    // SHA-256 of the bearer/session token: the token itself is never stored.
                    .col(string_len_uniq(AuthTokens::TokenHash, 64))
                    .col(string_len(AuthTokens::CsrfToken, 64))
                    .col(timestamp_with_time_zone(AuthTokens::CreatedAt))
                    .col(timestamp_with_time_zone(AuthTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthTokens::Table, AuthTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(pk_auto(Notifications::Id))
                    .col(integer(Notifications::UserId))
                    .col(string_len(Notifications::Title, 255))
                    .col(text(Notifications::Message))
                    .col(string_len(Notifications::NotificationType, 32))
                    .col(boolean(Notifications::IsRead).default(false))
                    .col(string_len(Notifications::Link, 500).default(""))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // "This user's, newest first" (the list) and "this user's unread" (the badge count).
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_created")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::CreatedAt)
                    .col(Notifications::Id)
                    .to_owned(),
            )
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

        manager
            .create_table(
                Table::create()
                    .table(GlobalNotifications::Table)
                    .if_not_exists()
                    .col(pk_auto(GlobalNotifications::Id))
                    .col(string_len(GlobalNotifications::Title, 255))
                    .col(text(GlobalNotifications::Message))
                    .col(string_len(GlobalNotifications::Level, 16))
                    .col(boolean(GlobalNotifications::IsActive).default(true))
                    .col(boolean(GlobalNotifications::ShowOnSite).default(true))
                    .col(timestamp_with_time_zone(GlobalNotifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(GlobalNotifications::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_global_notifications_active")
                    .table(GlobalNotifications::Table)
                    .col(GlobalNotifications::IsActive)
                    .col(GlobalNotifications::ShowOnSite)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            GlobalNotifications::Table.into_iden(),
            Notifications::Table.into_iden(),
            AuthTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    Title,
    Message,
    NotificationType,
    IsRead,
    Link,
    CreatedAt,
}

#[derive(DeriveIden)]
enum GlobalNotifications {
    Table,
    Id,
    Title,
    Message,
    Level,
    IsActive,
    ShowOnSite,
    CreatedAt,
    ExpiresAt,
}
