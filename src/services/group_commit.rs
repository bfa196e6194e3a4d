//! Group commit for personal notifications: the creates that arrive while a write is in progress
//! are saved together, in one INSERT and one commit.
//!
//! SQLite admits one writer at a time. Creates on separate pool connections used to wait for each
//! other in SQLite's busy handler, which sleeps whole milliseconds (1.5 sleeps per create flat
//! out), and each paid its own commit, file locks and re-reads of pages another connection had
//! changed. Queued here instead, creates that wait together cost one statement. Nothing waits
//! for a batch to fill: a create that finds the writer idle is written at once, on its own.
//!
//! Every saved row is pushed after its statement commits: a lone create through the entity's
//! `after_save` hook, a batch through the entity's bulk path, which publishes each row the same
//! way. The writer task runs in the server's outbox scope, so both reach its hub.
use std::collections::{HashMap, VecDeque};

use entity::notification;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, SqlErr};
use tokio::sync::{mpsc, oneshot};

use crate::{
    domain::{NewNotification, no_such_user},
    error::ApiError,
    outbox::Outbox,
};

/// Creates written in one statement at most (SQLite allows 32,766 bound values; a row has 7).
const MAX_BATCH: usize = 256;
/// Creates waiting for the writer at most; past it callers wait for room.
const QUEUE_LEN: usize = 4096;

/// Hands creates to the one task that writes them (see the module docs).
pub struct NotificationWriter {
    jobs: mpsc::Sender<Job>,
}

struct Job {
    row: NewNotification,
    reply: oneshot::Sender<Result<notification::Model, ApiError>>,
}

fn writer_gone() -> ApiError {
    ApiError::Internal("the notification writer has stopped".into())
}

impl NotificationWriter {
    /// Starts the writer task on the current actix arbiter, in `outbox`'s scope; it ends when
    /// the writer is dropped.
    pub fn start(db: DatabaseConnection, outbox: &Outbox) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_LEN);
        actix_web::rt::spawn(outbox.scope(run(db, queue)));
        Self { jobs }
    }

    /// Saves a notification for an existing user; it is pushed once committed.
    pub async fn create(&self, row: NewNotification) -> Result<notification::Model, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { row, reply }).await.map_err(|_| writer_gone())?;
        // If the caller goes away meanwhile, the create is still saved and pushed.
        answer.await.map_err(|_| writer_gone())?
    }
}

async fn run(db: DatabaseConnection, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&db, std::mem::take(&mut batch)).await;
    }
}

/// Saves `batch` and answers every job in it.
async fn write(db: &DatabaseConnection, batch: Vec<Job>) {
    if batch.len() == 1 {
        return write_each(db, batch).await;
    }
    let rows = batch.iter().map(|job| job.row.active_model()).collect();
    match notification::insert_many_and_push(db, rows).await {
        Ok(models) => answer(batch, models),
        // A user_id naming nobody fails the whole statement, so nothing was saved: save each
        // alone, and only the bad one fails.
        Err(e) if is_unknown_user(&e) => write_each(db, batch).await,
        Err(e) => {
            log::error!("saving {} notifications failed: {e}", batch.len());
            for job in batch {
                let _ = job.reply.send(Err(ApiError::from(DbErr::Custom(e.to_string()))));
            }
        }
    }
}

/// One INSERT per job, through `ActiveModel::insert` and its `after_save` hook.
async fn write_each(db: &DatabaseConnection, batch: Vec<Job>) {
    for job in batch {
        let result = match job.row.active_model().insert(db).await {
            Ok(model) => Ok(model),
            Err(e) if is_unknown_user(&e) => Err(no_such_user()),
            Err(e) => Err(e.into()),
        };
        let _ = job.reply.send(result);
    }
}

fn is_unknown_user(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// Gives each job the saved model with its columns; identical creates are interchangeable.
fn answer(batch: Vec<Job>, models: Vec<notification::Model>) {
    let mut waiting: HashMap<NewNotification, VecDeque<oneshot::Sender<_>>> = HashMap::with_capacity(batch.len());
    for job in batch {
        waiting.entry(job.row).or_default().push_back(job.reply);
    }
    for model in models {
        if let Some(reply) = waiting
            .get_mut(&NewNotification::of(&model))
            .and_then(VecDeque::pop_front)
        {
            let _ = reply.send(Ok(model));
        }
    }
    for reply in waiting.into_values().flatten() {
        log::error!("a saved notification did not come back from its INSERT");
        let _ = reply.send(Err(ApiError::Internal("saved notification not returned".into())));
    }
}

#[cfg(test)]
mod tests {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};

    use super::*;
    use crate::{configuration::Settings, startup::connect_database};

    async fn database() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::load().expect("config/default.toml loads");
        settings.database_url = format!("sqlite://{}/herald.db?mode=rwc", dir.path().display());
        let db = connect_database(&settings).await.expect("database");
        Migrator::up(&db, None).await.expect("migrations");
        let user = entity::user::ActiveModel {
            username: Set("someone".into()),
            password_hash: Set("x".into()),
            role: Set(entity::user::Role::Jobseeker),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        };
        user.insert(&db).await.expect("user");
        (db, dir)
    }

    /// Writes one batch of `(user_id, title)` creates; the answers in the same order.
    async fn write_batch(
        db: &DatabaseConnection,
        creates: &[(i32, &str)],
    ) -> Vec<Result<notification::Model, ApiError>> {
        let (jobs, answers): (Vec<_>, Vec<_>) = creates
            .iter()
            .map(|&(user_id, title)| {
                let (reply, answer) = oneshot::channel();
                let row = NewNotification::parse(user_id.into(), title, "m", "system", "").expect("valid");
                (Job { row, reply }, answer)
            })
            .unzip();
        write(db, jobs).await;
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.expect("every job is answered"));
        }
        results
    }

    #[actix_web::test]
    async fn a_batch_answers_each_create_with_its_own_saved_row() {
        let (db, _dir) = database().await;
        let results = write_batch(&db, &[(1, "a"), (1, "b"), (1, "a")]).await;
        let mut ids = Vec::new();
        for (result, title) in results.into_iter().zip(["a", "b", "a"]) {
            let model = result.expect("saved");
            assert_eq!((model.user_id, model.title.as_str()), (1, title));
            ids.push(model.id);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3, "identical creates are still separate rows");
        assert_eq!(notification::Entity::find().count(&db).await.expect("count"), 3);
    }

    #[actix_web::test]
    async fn an_unknown_user_fails_only_its_own_create_in_a_batch() {
        let (db, _dir) = database().await;
        let results = write_batch(&db, &[(1, "a"), (999, "b"), (1, "c")]).await;
        assert!(matches!(&results[0], Ok(m) if m.title == "a"));
        assert!(matches!(&results[1], Err(ApiError::BadRequest(_))));
        assert!(matches!(&results[2], Ok(m) if m.title == "c"));
        assert_eq!(notification::Entity::find().count(&db).await.expect("count"), 2);
    }
}
