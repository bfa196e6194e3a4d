//! Validated input: a handler holding one of these types (or the closed sets' enums these
//! functions return) cannot have skipped validation.
use entity::{
    global_notification::Level,
    notification::{self, NotificationType},
    user::Role,
};
use sea_orm::{ActiveEnum, ActiveValue::Set};

use crate::error::ApiError;

/// `A-Za-z0-9_.-`, 3 to 150 characters.
#[derive(Debug, Clone)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok_len = (3..=150).contains(&raw.len());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok_len && ok_chars {
            Ok(Self(raw.to_string()))
        } else {
            Err(ApiError::BadRequest(
                "username must be 3-150 characters of letters, digits, '_', '.' or '-'".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At least 8 characters; at most 1024, so hashing cost stays bounded.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw.chars().count() {
            0..8 => Err(ApiError::BadRequest("password must be at least 8 characters".into())),
            8..=1024 => Ok(Self(raw.to_string())),
            _ => Err(ApiError::BadRequest("password must be at most 1024 characters".into())),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A role anyone may register with, or send a bulk notification to (admins are made by the
/// operator).
pub fn registrable_role(raw: &str) -> Result<Role, ApiError> {
    match known::<Role>(raw) {
        Some(role @ (Role::Jobseeker | Role::Employer)) => Ok(role),
        Some(Role::Admin) | None => Err(ApiError::BadRequest("role must be 'jobseeker' or 'employer'".into())),
    }
}

/// Non-empty text of at most `max` characters, trimmed of nothing (sent as given).
pub fn required_text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    if raw.trim().is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    optional_text(field, raw, max)
}

/// Text of at most `max` characters, without NUL (which PostgreSQL cannot store in text).
pub fn optional_text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    if raw.contains('\0') {
        return Err(ApiError::BadRequest(format!("{field} must not contain NUL characters")));
    }
    if raw.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(raw.to_string())
}

/// One of the seed's notification types.
pub fn notification_type(raw: &str) -> Result<NotificationType, ApiError> {
    one_of("notification_type", raw)
}

/// One of the seed's announcement levels.
pub fn level(raw: &str) -> Result<Level, ApiError> {
    one_of("level", raw)
}

/// `raw` as a value of the closed set `T` (by its stored name); 400 naming `field` and every
/// value otherwise.
fn one_of<T: ActiveEnum<Value = String>>(field: &str, raw: &str) -> Result<T, ApiError> {
    known(raw).ok_or_else(|| ApiError::BadRequest(format!("{field} must be one of: {}", T::values().join(", "))))
}

/// The value of the closed set `T` stored as `raw`, if there is one.
pub fn known<T: ActiveEnum<Value = String>>(raw: &str) -> Option<T> {
    T::try_from_value(&raw.to_owned()).ok()
}

/// A notification's link: empty, a same-site path (one `/`, then neither `/` nor `\\`, which
/// browsers read as the start of another host), or an absolute `http(s)` URL with a host.
/// Nothing else is ever opened by a page: `javascript:`, `data:`, `//evil.example`,
/// `/\\evil.example` are refused. `static/app.js` (`safeHref`) applies the same rule.
pub fn link(raw: &str) -> Result<String, ApiError> {
    let link = optional_text("link", raw, LINK_MAX_CHARS)?;
    if link.is_empty() || is_safe_link(&link) {
        Ok(link)
    } else {
        Err(ApiError::BadRequest(
            "link must be a path on this site (one '/', then not '/' or '\\') or an http(s) URL".into(),
        ))
    }
}

fn is_safe_link(link: &str) -> bool {
    // Browsers strip or reinterpret whitespace and control characters inside URLs.
    if link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(rest) = link.strip_prefix('/') {
        return !rest.starts_with(['/', '\\']);
    }
    let lower = link.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return false;
    };
    let host = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    // A host of its own: not empty, and no user info that could make it read as another one.
    !host.is_empty() && !host.contains('@') && !rest.starts_with(['/', '\\'])
}

/// A validated request to notify one user: the columns a create sets. They build the row, and
/// recognise its saved model among a batch's (the order of a multi-row RETURNING is not
/// guaranteed: `services::group_commit`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NewNotification {
    user_id: i32,
    title: String,
    message: String,
    notification_type: NotificationType,
    link: String,
}

impl NewNotification {
    /// Checks each field as `POST /api/notifications/` documents it. Whether `user_id` names
    /// a user is the database's to say, when the row is saved.
    pub fn parse(
        user_id: i64,
        title: &str,
        message: &str,
        notification_type: &str,
        link: &str,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            // An id beyond the column's range names no user either.
            user_id: i32::try_from(user_id).map_err(|_| no_such_user())?,
            title: required_text("title", title, TITLE_MAX_CHARS)?,
            message: required_text("message", message, MESSAGE_MAX_CHARS)?,
            notification_type: self::notification_type(notification_type)?,
            link: self::link(link)?,
        })
    }

    /// The create's columns of a saved notification.
    pub fn of(model: &notification::Model) -> Self {
        Self {
            user_id: model.user_id,
            title: model.title.clone(),
            message: model.message.clone(),
            notification_type: model.notification_type,
            link: model.link.clone(),
        }
    }

    /// The row to insert.
    pub fn active_model(&self) -> notification::ActiveModel {
        notification::ActiveModel {
            user_id: Set(self.user_id),
            title: Set(self.title.clone()),
            message: Set(self.message.clone()),
            notification_type: Set(self.notification_type),
            link: Set(self.link.clone()),
            ..Default::default()
        }
    }
}

/// The answer to a create for a user that does not exist.
pub fn no_such_user() -> ApiError {
    ApiError::BadRequest("user_id does not name a user".into())
}

/// Title limit, as the column.
pub const TITLE_MAX_CHARS: usize = 255;
/// Message limit: well inside the body limit.
pub const MESSAGE_MAX_CHARS: usize = 10_000;
/// Link limit, as the column.
pub const LINK_MAX_CHARS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse("a.b-c_1").is_ok());
        assert!(Username::parse("bad name").is_err());
        assert!(Username::parse("ünï").is_err());
        assert!(Username::parse(&"x".repeat(151)).is_err());
        assert!(Username::parse(&"x".repeat(150)).is_ok());
    }

    #[test]
    fn passwords_need_eight_characters_and_never_print() {
        assert!(Password::parse("1234567").is_err());
        let p = Password::parse("12345678").expect("valid");
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn text_refuses_nul() {
        assert!(required_text("title", "a\0b", 10).is_err());
        assert!(optional_text("link", "\0", 10).is_err());
    }

    #[test]
    fn links_are_same_site_paths_or_http_urls() {
        for good in [
            "",
            "/",
            "/messages/",
            "/jobs/42?tab=a#b",
            "https://example.com",
            "http://example.com/a/b",
            "HTTPS://Example.com:8443/x",
        ] {
            assert_eq!(link(good).ok().as_deref(), Some(good), "{good:?}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example/",
            "\\\\evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "evil.example",
            "messages/",
            "https://",
            "https:///evil.example",
            "https:/\\evil.example",
            "http://user@evil.example",
            "/ /evil.example",
            "/\t/evil.example",
            "ftp://example.com",
        ] {
            assert!(link(bad).is_err(), "{bad:?}");
        }
        assert!(link(&format!("/{}", "a".repeat(LINK_MAX_CHARS))).is_err());
    }

    #[test]
    fn only_seed_types_levels_and_registrable_roles_pass() {
        assert_eq!(notification_type("job_post").ok(), Some(NotificationType::JobPost));
        assert!(notification_type("spam").is_err());
        assert!(
            notification_type("System").is_err(),
            "names are case-sensitive, as stored"
        );
        assert_eq!(level("danger").ok(), Some(Level::Danger));
        assert!(level("critical").is_err());
        assert_eq!(registrable_role("employer").ok(), Some(Role::Employer));
        assert!(registrable_role("admin").is_err(), "admins are made by the operator");
        assert!(registrable_role("").is_err());
    }

    /// Today's 400 bodies, word for word (clients may show them).
    #[test]
    fn an_unknown_value_is_refused_with_the_whole_set() {
        let message = |e: ApiError| e.to_string();
        assert_eq!(
            notification_type("spam").map_err(message).err().as_deref(),
            Some(
                "notification_type must be one of: job_application, job_post, message, profile_view, \
                 post_like, connection, system"
            )
        );
        assert_eq!(
            level("critical").map_err(message).err().as_deref(),
            Some("level must be one of: info, warning, danger")
        );
        assert_eq!(
            registrable_role("admin").map_err(message).err().as_deref(),
            Some("role must be 'jobseeker' or 'employer'")
        );
    }

    /// The stored strings are the pre-enum column values, so no data migration was needed; the
    /// database (SeaORM) and the JSON (serde) spell every variant the same way.
    #[test]
    fn every_variant_round_trips_its_stored_string() {
        fn check<T>(stored: &[&str])
        where
            T: ActiveEnum<Value = String> + sea_orm::Iterable + serde::Serialize + serde::de::DeserializeOwned,
            T: PartialEq + std::fmt::Debug,
        {
            assert_eq!(T::values(), stored, "{}", std::any::type_name::<T>());
            for (value, name) in T::iter().zip(stored) {
                assert_eq!(known::<T>(name).as_ref(), Some(&value));
                assert_eq!(serde_json::to_value(&value).expect("serializes"), *name);
                let parsed: T = serde_json::from_value(serde_json::json!(name)).expect("deserializes");
                assert_eq!(parsed, value);
            }
            assert!(known::<T>("unknown").is_none());
            assert!(serde_json::from_value::<T>(serde_json::json!("unknown")).is_err());
        }
        check::<NotificationType>(&[
            "job_application",
            "job_post",
            "message",
            "profile_view",
            "post_like",
            "connection",
            "system",
        ]);
        check::<Level>(&["info", "warning", "danger"]);
        check::<Role>(&["jobseeker", "employer", "admin"]);
    }
}
