//! `AuthService`: accounts (registration, the bootstrap admin) and their credentials: login,
//! validation through a bounded cache, revocation.
use std::{
    collections::HashSet,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration as StdDuration,
};

use chrono::{DateTime, Duration, Utc};
use entity::{
    auth_token,
    user::{self, Role},
};
use moka::sync::Cache;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, Func},
};

use super::{password, token};
use crate::{
    domain::{Password, Username},
    error::ApiError,
};

/// Credentials cached at most; past it the cache evicts the least likely to be used again
/// (an evicted one is read from the database on its next use).
const CACHE_CAPACITY: u64 = 200_000;
/// How long a cached credential is trusted before the database is asked again. It bounds how
/// long this node can miss a change made elsewhere: a revocation whose message from another
/// node was lost, a role changed by `herald create-admin`.
const CACHE_TTL: StdDuration = StdDuration::from_secs(5 * 60);
/// Credential ids looked up per query when re-checking sessions.
const EXISTING_CHUNK_LEN: usize = 1000;

/// The account behind a request, and the one JSON shape of a user everywhere
/// (`{"id", "username", "role"}`: register, login, me, the admin's user list).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuthUser {
    pub id: i32,
    pub username: String,
    /// `admin`, `employer` or `jobseeker`.
    #[schema(value_type = String, example = "jobseeker")]
    pub role: Role,
}

impl From<&user::Model> for AuthUser {
    fn from(model: &user::Model) -> Self {
        Self::from_model(model)
    }
}

impl AuthUser {
    fn from_model(model: &user::Model) -> Self {
        Self {
            id: model.id,
            username: model.username.clone(),
            role: model.role,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A valid login.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Row id of the login; sockets opened with it are closed when it is revoked.
    pub id: i32,
    pub token_hash: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: AuthUser,
}

/// A fresh login: the secret token (shown once) and its credential.
pub struct Login {
    pub token: String,
    pub credential: Credential,
}

/// Accounts and their credentials: registers, logs in, validates (through the cache) and revokes.
pub struct AuthService {
    db: DatabaseConnection,
    lifetime: Duration,
    /// Validated credentials by token hash.
    cache: Cache<String, Credential>,
    /// The revocation mark: bumped by every revocation, which then drops its cache entry, both
    /// under this lock. A credential read from the database is cached (under the lock too)
    /// only if the mark has not moved since the read began, so a logout racing a lookup cannot
    /// leave the revoked credential cached.
    revocations: Mutex<u64>,
    /// Off while another node's revocations could be missed (channel layer down).
    cache_enabled: AtomicBool,
    /// Password hashes allowed to run at once.
    hash_slots: tokio::sync::Semaphore,
}

impl AuthService {
    pub fn new(db: DatabaseConnection, lifetime_hours: u32) -> Self {
        Self::with_cache_capacity(db, lifetime_hours, CACHE_CAPACITY)
    }

    fn with_cache_capacity(db: DatabaseConnection, lifetime_hours: u32, capacity: u64) -> Self {
        Self {
            db,
            lifetime: Duration::hours(i64::from(lifetime_hours)),
            cache: Cache::builder().max_capacity(capacity).time_to_live(CACHE_TTL).build(),
            revocations: Mutex::new(0),
            cache_enabled: AtomicBool::new(true),
            hash_slots: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
        }
    }

    /// The credential a presented token stands for, if it is valid now.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, ApiError> {
        if !token::looks_valid(token) {
            return Ok(None);
        }
        let hash = token::hash(token);
        let now = Utc::now();
        if self.cache_enabled.load(Ordering::Acquire)
            && let Some(credential) = self.cache.get(&hash)
        {
            if credential.expires_at > now {
                return Ok(Some(credential));
            }
            self.forget(&hash);
            return Ok(None);
        }
        let since = self.revocation_mark();
        let Some(credential) = self.stored_credential(&hash, now).await? else {
            return Ok(None);
        };
        self.remember(since, credential.clone());
        Ok(Some(credential))
    }

    /// Where the revocations stand; pass it to [`Self::remember`] after a database read.
    fn revocation_mark(&self) -> u64 {
        *self.marks()
    }

    /// The credential stored under `hash`, if valid at `now`.
    async fn stored_credential(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<Credential>, DbErr> {
        let Some((row, Some(user))) = auth_token::Entity::find()
            .filter(auth_token::Column::TokenHash.eq(hash))
            .find_also_related(user::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if row.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(Credential {
            id: row.id,
            token_hash: hash.to_string(),
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
            user: AuthUser::from_model(&user),
        }))
    }

    /// Caches a credential read from the database, unless a revocation happened since `since`
    /// (it may be this very credential's: the read could predate the delete).
    fn remember(&self, since: u64, credential: Credential) {
        if !self.cache_enabled.load(Ordering::Acquire) {
            return;
        }
        let mark = self.marks();
        if *mark != since {
            return;
        }
        self.cache.insert(credential.token_hash.clone(), credential);
    }

    /// Checks a username and password; on success stores a new credential. The name matches
    /// regardless of case (names are unique regardless of case), so `Alice` signs in `alice`.
    pub async fn login(&self, username: &str, password: &str) -> Result<Login, ApiError> {
        // A name no account can have is not looked up (PostgreSQL refuses some of them, NUL).
        let user = match Username::parse(username) {
            Ok(name) => self.find_user(name.as_str()).await?,
            Err(_) => None,
        };
        // Verify against a dummy hash for unknown names so timing does not reveal which exist.
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let candidate = password.to_string();
        let ok = self
            .hashing(move || password::verify(&candidate, stored.as_deref()))
            .await?;
        let (Some(user), true) = (user, ok) else {
            return Err(ApiError::Unauthorized);
        };
        let secret = token::generate();
        let csrf = token::generate();
        let now = Utc::now();
        // Expired logins are never presented again: drop this user's, so the table stays small.
        auth_token::Entity::delete_many()
            .filter(auth_token::Column::UserId.eq(user.id))
            .filter(auth_token::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        let row = auth_token::ActiveModel {
            user_id: Set(user.id),
            token_hash: Set(token::hash(&secret)),
            csrf_token: Set(csrf),
            created_at: Set(now),
            expires_at: Set(now + self.lifetime),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(Login {
            token: secret,
            credential: Credential {
                id: row.id,
                token_hash: row.token_hash,
                csrf_token: row.csrf_token,
                expires_at: row.expires_at,
                user: AuthUser::from_model(&user),
            },
        })
    }

    /// Deletes the credential; it stops working on this node at once.
    pub async fn revoke(&self, credential: &Credential) -> Result<(), DbErr> {
        auth_token::Entity::delete_by_id(credential.id).exec(&self.db).await?;
        // After the delete: a request racing it can no longer re-cache the credential.
        self.forget(&credential.token_hash);
        Ok(())
    }

    /// Which of the credentials `ids` still exist (the others were revoked).
    pub async fn existing_credentials(&self, ids: &[i32]) -> Result<HashSet<i32>, DbErr> {
        let mut existing = HashSet::new();
        // Chunks keep each query well under the database's bind-parameter limit.
        for chunk in ids.chunks(EXISTING_CHUNK_LEN) {
            let found: Vec<i32> = auth_token::Entity::find()
                .select_only()
                .column(auth_token::Column::Id)
                .filter(auth_token::Column::Id.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(&self.db)
                .await?;
            existing.extend(found);
        }
        Ok(existing)
    }

    /// Drops a cached credential (revoked here or on another node).
    pub fn forget(&self, token_hash: &str) {
        let mut mark = self.marks();
        *mark += 1;
        self.cache.invalidate(token_hash);
    }

    /// Turns the cache off (and empties it) while revocations from other nodes may be missed.
    pub fn set_cache_enabled(&self, enabled: bool) {
        self.cache_enabled.store(enabled, Ordering::Release);
        let mut mark = self.marks();
        // Lookups that began while revocations could be missed must not fill the new cache.
        *mark += 1;
        self.cache.invalidate_all();
    }

    /// The account named `username`, compared regardless of case (served by the
    /// `lower(username)` unique index).
    async fn find_user(&self, username: &str) -> Result<Option<user::Model>, DbErr> {
        user::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col((user::Entity, user::Column::Username))))
                    .eq(username.to_ascii_lowercase()),
            )
            .one(&self.db)
            .await
    }

    /// Creates an account; 409 when the name is taken, in any case (`Admin` beside `admin`).
    pub async fn register(
        &self,
        username: &Username,
        password: &Password,
        role: Role,
    ) -> Result<user::Model, ApiError> {
        let taken = self.find_user(username.as_str()).await?.is_some();
        if taken {
            return Err(ApiError::Conflict("username is already taken".into()));
        }
        let plain = password.expose().to_string();
        let hash = self.hashing(move || password::hash(&plain)).await??;
        let inserted = user::ActiveModel {
            username: Set(username.as_str().to_string()),
            password_hash: Set(hash),
            role: Set(role),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(model) => Ok(model),
            // Lost a race with a concurrent registration of the same name.
            Err(e) if is_unique_violation(&e) => Err(ApiError::Conflict("username is already taken".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the admin account, or resets its password and role (bootstrap and `create-admin`).
    /// An account whose name differs only in case is that account: it keeps its spelling.
    pub async fn ensure_admin(&self, username: &Username, password: &Password) -> Result<user::Model, ApiError> {
        let plain = password.expose().to_string();
        let hash = self.hashing(move || password::hash(&plain)).await??;
        let existing = self.find_user(username.as_str()).await?;
        let model = match existing {
            Some(existing) => {
                let mut active: user::ActiveModel = existing.into();
                active.password_hash = Set(hash);
                active.role = Set(Role::Admin);
                active.update(&self.db).await?
            }
            None => {
                user::ActiveModel {
                    username: Set(username.as_str().to_string()),
                    password_hash: Set(hash),
                    role: Set(Role::Admin),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                }
                .insert(&self.db)
                .await?
            }
        };
        Ok(model)
    }

    /// Runs an Argon2 computation off the event loop, at most one per core at a time: each
    /// takes 19 MiB and a core, so a login flood queues instead of exhausting memory.
    async fn hashing<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let _permit = self
            .hash_slots
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(format!("hashing unavailable: {e}")))?;
        Ok(actix_web::web::block(work).await?)
    }

    /// The revocation mark, locked. A panic elsewhere cannot leave it inconsistent (it is one
    /// number), so a poisoned lock is used as it is.
    fn marks(&self) -> std::sync::MutexGuard<'_, u64> {
        self.revocations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::Database;

    use super::*;

    /// A migrated SQLite database in a temporary directory (kept while the guard lives).
    async fn database() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Database::connect(format!("sqlite://{}/auth.db?mode=rwc", dir.path().display()))
            .await
            .expect("database");
        Migrator::up(&db, None).await.expect("migrated");
        (db, dir)
    }

    #[actix_web::test]
    async fn the_cache_stays_within_its_capacity_and_a_revoked_token_is_refused_at_once() {
        const CAPACITY: u64 = 4;
        let (db, _dir) = database().await;
        let auth = AuthService::with_cache_capacity(db, 1, CAPACITY);
        let name = Username::parse("many").expect("name");
        let password = Password::parse("password-123").expect("password");
        auth.register(&name, &password, Role::Employer)
            .await
            .expect("registered");
        let mut logins = Vec::new();
        for _ in 0..CAPACITY * 3 {
            logins.push(auth.login("many", "password-123").await.expect("login"));
        }

        for login in &logins {
            let credential = auth.authenticate(&login.token).await.expect("authenticate");
            assert_eq!(credential.map(|c| c.user.role), Some(Role::Employer));
        }
        // Eviction is applied by the cache's housekeeping, which this runs now.
        auth.cache.run_pending_tasks();
        let cached = auth.cache.entry_count();
        assert!(
            (1..=CAPACITY).contains(&cached),
            "{cached} credentials cached for {} logins",
            logins.len()
        );

        // A credential the cache holds is refused on the very next request after its revocation;
        // the others still pass.
        let cached = logins
            .iter()
            .position(|login| auth.cache.contains_key(&login.credential.token_hash))
            .expect("some credential is cached");
        let revoked = logins.remove(cached);
        auth.revoke(&revoked.credential).await.expect("revoked");
        assert!(auth.authenticate(&revoked.token).await.expect("authenticate").is_none());
        for login in &logins {
            assert!(auth.authenticate(&login.token).await.expect("authenticate").is_some());
        }
    }

    #[actix_web::test]
    async fn a_lookup_racing_a_logout_does_not_cache_the_revoked_credential() {
        let (db, _dir) = database().await;
        let auth = AuthService::new(db, 1);
        let name = Username::parse("racer").expect("name");
        let password = Password::parse("password-123").expect("password");
        auth.register(&name, &password, Role::Jobseeker)
            .await
            .expect("registered");
        let login = auth.login("racer", "password-123").await.expect("login");

        // A request reads the credential from the database...
        let since = auth.revocation_mark();
        let read = auth
            .stored_credential(&login.credential.token_hash, Utc::now())
            .await
            .expect("query")
            .expect("still stored");
        // ...a logout deletes it and forgets it meanwhile...
        auth.revoke(&login.credential).await.expect("revoked");
        // ...and then the request would cache what it read.
        auth.remember(since, read);

        let again = auth.authenticate(&login.token).await.expect("authenticate");
        assert!(again.is_none(), "the revoked credential was cached again");
    }

    #[actix_web::test]
    async fn names_match_regardless_of_case() {
        let (db, _dir) = database().await;
        let auth = AuthService::new(db, 1);
        let password = Password::parse("password-123").expect("password");
        auth.register(&Username::parse("Alice").expect("name"), &password, Role::Jobseeker)
            .await
            .expect("registered");
        let taken = auth
            .register(&Username::parse("ALICE").expect("name"), &password, Role::Jobseeker)
            .await;
        assert!(matches!(taken, Err(ApiError::Conflict(_))), "{taken:?}");
        let login = auth.login("alice", "password-123").await.expect("login");
        assert_eq!(login.credential.user.username, "Alice");
    }
}
