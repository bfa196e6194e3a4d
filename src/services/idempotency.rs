//! Safe retries of admin creates: the first answer to an `Idempotency-Key` is stored in the
//! database and replayed to every retry of the same admin for 24 hours.
//!
//! The key's row is inserted *before* the create runs, with no answer yet: the unique index on
//! (admin, key) makes that insert the lock, so of two concurrent requests with one key exactly
//! one creates (and pushes). The other waits for the first answer (polling the row for up to
//! [`IN_PROGRESS_WAIT`]) and replays it, or gets 409 if the first is still running after that.
//! Only successful answers are kept: when the create fails, the row is removed so a retry runs
//! it again. A row left unanswered by a crashed node is taken over after [`ABANDONED_AFTER`].
//! The retention job deletes rows older than [`KEY_LIFETIME`].
use std::{future::Future, time::Duration};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode};
use chrono::Utc;
use entity::idempotency_key;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, SqlErr};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// How long a key's first answer is replayed.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a retry waits for the first request with its key to answer before getting 409.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting retry looks for the first answer.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// An unanswered key this old belongs to a request that died with its node: the next retry
/// runs the create itself.
const ABANDONED_AFTER: Duration = Duration::from_secs(300);
/// Longest key, in characters.
const KEY_MAX_CHARS: usize = 255;

/// A validated `Idempotency-Key`: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, ApiError> {
        let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
        if raw.is_empty() || raw.len() > KEY_MAX_CHARS || !printable {
            return Err(ApiError::BadRequest(format!(
                "{HEADER} must be 1 to {KEY_MAX_CHARS} printable ASCII characters"
            )));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The request's key, if it sent one.
    pub fn from_request(req: &HttpRequest) -> Result<Option<Self>, ApiError> {
        let mut values = req.headers().get_all(HEADER);
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiError::BadRequest(format!("send one {HEADER} header")));
        }
        Self::parse(first.as_bytes()).map(Some)
    }
}

/// A create's answer: what is sent, and what a retry gets again.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// The JSON text as first sent: kept as text so a replay has the same bytes, key order
    /// included (a `Value` would sort the keys).
    pub body: String,
}

impl Answer {
    pub fn created(body: &impl serde::Serialize) -> Result<Self, ApiError> {
        Ok(Self {
            status: StatusCode::CREATED,
            body: serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?,
        })
    }

    fn into_response(self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type(actix_web::mime::APPLICATION_JSON)
            .body(self.body)
    }
}

/// Hex SHA-256 of the method, the path and the body (as canonical JSON: keys sorted, so a
/// client that re-serializes its retry in another key order still matches).
pub fn fingerprint(method: &str, path: &str, body: &Value) -> String {
    let mut hash = Sha256::new();
    for part in [method, "\n", path, "\n", &body.to_string()] {
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Runs `create` once per (admin, key): without a key it just runs; with one, a retry gets the
/// stored first answer instead (see the module docs). With a key, `create` runs to the end even
/// if this future is dropped meanwhile.
pub async fn once<F, Fut>(
    db: &DatabaseConnection,
    req: &HttpRequest,
    admin_id: i32,
    body: &Value,
    create: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = Result<Answer, ApiError>> + 'static,
{
    let Some(key) = IdempotencyKey::from_request(req)? else {
        return create().await.map(Answer::into_response);
    };
    let fingerprint = fingerprint(req.method().as_str(), req.path(), body);
    let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
    loop {
        match claim(db, admin_id, &key, &fingerprint).await? {
            Claim::Ours(row_id) => {
                // A task of its own: should this handler be dropped mid-way (its connection torn
                // down), the create still finishes and records its answer for the retry. It
                // carries the request's outbox scope, so what it saves is pushed.
                let db = db.clone();
                let run = actix_web::rt::spawn(entity::outbox::carry(async move {
                    let answer = match create().await {
                        Ok(answer) => answer,
                        Err(e) => {
                            release(&db, row_id).await;
                            return Err(e);
                        }
                    };
                    record(&db, row_id, &answer).await?;
                    Ok(answer)
                }));
                let answer = run.await.map_err(|e| ApiError::Internal(e.to_string()))??;
                return Ok(answer.into_response());
            }
            Claim::Answered(answer) => return Ok(answer.into_response()),
            Claim::Running if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Claim::Running => {
                return Err(ApiError::Conflict(format!(
                    "a request with this {HEADER} is still in progress; retry later"
                )));
            }
        }
    }
}

enum Claim {
    /// This request inserted the key: it runs the create (the row's id).
    Ours(i32),
    /// An earlier request with this key and body answered this.
    Answered(Answer),
    /// An earlier request with this key and body is still running.
    Running,
}

async fn claim(
    db: &DatabaseConnection,
    admin_id: i32,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<Claim, ApiError> {
    let inserted = idempotency_key::ActiveModel {
        admin_id: Set(admin_id),
        key: Set(key.0.clone()),
        fingerprint: Set(fingerprint.to_string()),
        status: Set(None),
        body: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(row) => return Ok(Claim::Ours(row.id)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(row) = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::AdminId.eq(admin_id))
        .filter(idempotency_key::Column::Key.eq(key.0.as_str()))
        .one(db)
        .await?
    else {
        // Released or expired meanwhile: the caller claims again.
        return Ok(Claim::Running);
    };
    let age = (Utc::now() - row.created_at).to_std().unwrap_or_default();
    if age >= KEY_LIFETIME || (row.status.is_none() && age >= ABANDONED_AFTER) {
        // Expired, or left by a node that died: free it, and the caller claims again.
        release(db, row.id).await;
        return Ok(Claim::Running);
    }
    if row.fingerprint != fingerprint {
        return Err(ApiError::Unprocessable(format!(
            "this {HEADER} was already used with a different request"
        )));
    }
    match (row.status, row.body) {
        (Some(status), Some(body)) => Ok(Claim::Answered(Answer {
            status: u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK),
            body,
        })),
        _ => Ok(Claim::Running),
    }
}

/// Stores the first answer for the retries.
async fn record(db: &DatabaseConnection, row_id: i32, answer: &Answer) -> Result<(), ApiError> {
    idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::Status, (answer.status.as_u16() as i16).into())
        .col_expr(idempotency_key::Column::Body, answer.body.clone().into())
        .filter(idempotency_key::Column::Id.eq(row_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Frees a key (its create failed, expired or was abandoned) so the next request runs anew.
async fn release(db: &DatabaseConnection, row_id: i32) {
    if let Err(e) = idempotency_key::Entity::delete_by_id(row_id).exec(db).await {
        log::warn!("cannot release an idempotency key: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_printable_ascii() {
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"a").is_ok());
        assert!(IdempotencyKey::parse(b"retry me 42 !~").is_ok());
        assert!(IdempotencyKey::parse("x".repeat(255).as_bytes()).is_ok());
        assert!(IdempotencyKey::parse("x".repeat(256).as_bytes()).is_err());
        assert!(IdempotencyKey::parse(b"tab\there").is_err());
        assert!(IdempotencyKey::parse("caf\u{e9}".as_bytes()).is_err());
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_content() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).expect("json");
        let c: Value = serde_json::from_str(r#"{"a":1,"b":3}"#).expect("json");
        assert_eq!(fingerprint("POST", "/p/", &a), fingerprint("POST", "/p/", &b));
        assert_ne!(fingerprint("POST", "/p/", &a), fingerprint("POST", "/p/", &c));
        assert_ne!(fingerprint("POST", "/p/", &a), fingerprint("POST", "/q/", &a));
    }
}
