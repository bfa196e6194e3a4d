//! Accounts and credentials: password hashing, login tokens, the session cookie and CSRF.
//!
//! One login creates one credential: a random token given to the client as the Bearer token
//! and as the `sessionid` cookie; only its SHA-256 is stored. [`AuthService`] (`service.rs`)
//! issues, validates and revokes them; validated credentials are cached by that hash, so
//! authenticating a request costs a hash and a cache lookup, not a database round trip, and
//! logout removes the row and the cache entry at once.
pub mod csrf;
pub mod extractor;
pub mod password;
pub mod service;
pub mod token;

pub use extractor::{AdminUser, CurrentUser};
pub use service::{AuthService, AuthUser, Credential, Login};
