//! The seed's JSON shapes, written once and shared by the REST routes and the hub, and the
//! WebSocket frame a push goes out in ([`PushFrame`]), made once for every socket.
use actix_http::ws::{OpCode, Parser};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use entity::{
    global_notification::{self, Level},
    notification::{self, NotificationType},
};
use serde::{Serialize, Serializer};

use crate::push::PushKey;

/// `2026-01-05T10:30:00Z`: RFC 3339, UTC, whole seconds, as the seed shows.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// A timestamp as every payload writes it.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.format(TIMESTAMP_FORMAT).to_string()
}

fn ser_time<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&at.format(TIMESTAMP_FORMAT))
}

fn ser_opt_time<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => ser_time(at, s),
        None => s.serialize_none(),
    }
}

/// A personal notification as the seed shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NotificationView<'a> {
    pub id: i32,
    pub title: &'a str,
    pub message: &'a str,
    #[schema(value_type = String)]
    pub notification_type: NotificationType,
    pub is_read: bool,
    /// `""` when there is none.
    pub link: &'a str,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime, example = "2026-01-05T10:30:00Z")]
    pub created_at: DateTime<Utc>,
}

impl<'a> From<&'a notification::Model> for NotificationView<'a> {
    fn from(n: &'a notification::Model) -> Self {
        Self {
            id: n.id,
            title: &n.title,
            message: &n.message,
            notification_type: n.notification_type,
            is_read: n.is_read,
            link: &n.link,
            created_at: n.created_at,
        }
    }
}

/// An announcement as the seed's REST list shows it (`expires_at` included; the push carries it too).
#[derive(Serialize, utoipa::ToSchema)]
pub struct GlobalView<'a> {
    pub id: i32,
    pub title: &'a str,
    pub message: &'a str,
    /// `info`, `warning` or `danger`.
    #[schema(value_type = String)]
    pub level: Level,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime, example = "2026-01-05T10:30:00Z")]
    pub created_at: DateTime<Utc>,
    /// `null`: never expires.
    #[serde(serialize_with = "ser_opt_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a global_notification::Model> for GlobalView<'a> {
    fn from(g: &'a global_notification::Model) -> Self {
        Self {
            id: g.id,
            title: &g.title,
            message: &g.message,
            level: g.level,
            created_at: g.created_at,
            expires_at: g.expires_at,
        }
    }
}

/// An announcement with every field, for admins.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GlobalAdminView<'a> {
    #[serde(flatten)]
    pub base: GlobalView<'a>,
    pub is_active: bool,
    pub show_on_site: bool,
}

impl<'a> From<&'a global_notification::Model> for GlobalAdminView<'a> {
    fn from(g: &'a global_notification::Model) -> Self {
        Self {
            base: g.into(),
            is_active: g.is_active,
            show_on_site: g.show_on_site,
        }
    }
}

#[derive(Serialize)]
struct Push<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    notification: T,
}

fn to_text<T: Serialize>(value: &T) -> ByteString {
    // Serializing our own structs of strings, numbers and bools cannot fail.
    ByteString::from(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
}

/// `{"type":"notification","notification":{...}}`
pub fn notification_push(n: &notification::Model) -> ByteString {
    to_text(&Push {
        kind: "notification",
        notification: NotificationView::from(n),
    })
}

/// `{"type":"global_notification","notification":{...}}`
pub fn global_push(g: &global_notification::Model) -> ByteString {
    to_text(&Push {
        kind: "global_notification",
        notification: GlobalView::from(g),
    })
}

/// `{"type":"global_notification_removed","id":N}`
pub fn global_removed_push(id: i32) -> ByteString {
    to_text(&serde_json::json!({ "type": "global_notification_removed", "id": id }))
}

/// `{"type":"global_notification","edited":true,"notification":{...}}`: an announcement that
/// was edited and is live after the edit, sent again whole. The `edited` key before
/// `notification` keeps it from opening like a creation's push (`push_key`), so nothing skips it
/// as a repeat of the id it already delivered.
pub fn global_edited_push(g: &global_notification::Model) -> ByteString {
    #[derive(Serialize)]
    struct Edited<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        edited: bool,
        notification: GlobalView<'a>,
    }
    to_text(&Edited {
        kind: "global_notification",
        edited: true,
        notification: GlobalView::from(g),
    })
}

/// Which notification a serialized push carries, read from its fixed opening (the type, then
/// the notification's id first: see `NotificationView`, `GlobalView`). Pushes cross between
/// nodes as text; this tells a catching-up hub what it has already sent without parsing them.
/// Only a creation's push may open this way: whoever sends the same id again on purpose (an
/// edited announcement) must not be skipped as a repeat, so such a push puts another key
/// before `notification` (e.g. `{"type":"global_notification","edited":true,...}`) and goes
/// through the hub as `PushKey::Other`.
pub fn push_key(text: &str) -> PushKey {
    const PERSONAL: &str = r#"{"type":"notification","notification":{"id":"#;
    const GLOBAL: &str = r#"{"type":"global_notification","notification":{"id":"#;
    let id = |rest: &str| rest.split_once(',').and_then(|(id, _)| id.parse::<i32>().ok());
    if let Some(id) = text.strip_prefix(PERSONAL).and_then(id) {
        PushKey::Personal(id)
    } else if let Some(id) = text.strip_prefix(GLOBAL).and_then(id) {
        PushKey::Global(id)
    } else {
        PushKey::Other
    }
}

/// A push as the bytes of one WebSocket text frame. Server frames are not masked, so every
/// socket sends the same bytes: a push is serialized and framed once, and each socket only
/// takes a reference to it.
#[derive(Debug, Clone)]
pub struct PushFrame(Bytes);

impl PushFrame {
    pub fn text(text: &str) -> Self {
        // 10: the longest header of an unmasked frame.
        let mut frame = BytesMut::with_capacity(text.len() + 10);
        Parser::write_message(&mut frame, text, OpCode::Text, true, false);
        Self(frame.freeze())
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

/// What happened to some of a user's notifications (the `type` of the push that says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `notification_read`
    Read,
    /// `notification_unread`
    Unread,
    /// `notification_deleted`
    Deleted,
}

impl Change {
    fn push_type(self) -> &'static str {
        match self {
            Change::Read => "notification_read",
            Change::Unread => "notification_unread",
            Change::Deleted => "notification_deleted",
        }
    }
}

/// `{"type":"notification_read"|"notification_unread"|"notification_deleted",
/// "notification_ids":[...],"unread_count":N}`: a change, with the user's unread count after it.
pub fn change_push(change: Change, ids: &[i32], unread_count: u64) -> ByteString {
    #[derive(Serialize)]
    struct Changed<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        notification_ids: &'a [i32],
        unread_count: u64,
    }
    to_text(&Changed {
        kind: change.push_type(),
        notification_ids: ids,
        unread_count,
    })
}

/// `{"type":"sync","unread_count":N,"replayed":K,"complete":true|false}`: the end of a
/// handshake's replay.
pub fn sync_push(unread_count: u64, replayed: usize, complete: bool) -> ByteString {
    #[derive(Serialize)]
    struct Sync<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        unread_count: u64,
        replayed: usize,
        complete: bool,
    }
    to_text(&Sync {
        kind: "sync",
        unread_count,
        replayed,
        complete,
    })
}

/// `{"type":"error","error":"..."}`
pub fn error_push(message: &str) -> ByteString {
    to_text(&serde_json::json!({ "type": "error", "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-01-05T10:30:00.987654+02:00")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(timestamp(&at), "2026-01-05T08:30:00Z");
    }

    #[test]
    fn pushes_have_the_seed_shape() {
        let at = DateTime::parse_from_rfc3339("2026-01-05T10:30:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let n = notification::Model {
            id: 123,
            user_id: 7,
            title: "New Job Application".into(),
            message: "Someone applied".into(),
            notification_type: NotificationType::JobApplication,
            is_read: false,
            link: "/employers/applicants/".into(),
            created_at: at,
        };
        let v: serde_json::Value = serde_json::from_str(&notification_push(&n)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"type":"notification","notification":{
                "id":123,"title":"New Job Application","message":"Someone applied",
                "notification_type":"job_application","is_read":false,
                "link":"/employers/applicants/","created_at":"2026-01-05T10:30:00Z"}})
        );
        assert_eq!(push_key(&notification_push(&n)), PushKey::Personal(123));
        let g = global_notification::Model {
            id: 45,
            title: "Maintenance, tonight".into(),
            message: "m".into(),
            level: Level::Info,
            is_active: true,
            show_on_site: true,
            created_at: at,
            expires_at: None,
        };
        assert_eq!(push_key(&global_push(&g)), PushKey::Global(45));
        assert_eq!(push_key(&change_push(Change::Read, &[1, 2], 3)), PushKey::Other);
        assert_eq!(
            push_key(r#"{"type":"notification","notification":{"id":x,"#),
            PushKey::Other
        );
        assert_eq!(push_key(&global_edited_push(&g)), PushKey::Other);
        for (change, kind) in [
            (Change::Read, "notification_read"),
            (Change::Unread, "notification_unread"),
            (Change::Deleted, "notification_deleted"),
        ] {
            let r: serde_json::Value = serde_json::from_str(&change_push(change, &[1, 2], 3)).expect("json");
            assert_eq!(
                r,
                serde_json::json!({"type": kind, "notification_ids": [1, 2], "unread_count": 3})
            );
        }
    }

    #[test]
    fn a_push_frame_is_one_unmasked_final_text_frame() {
        // 125 bytes fit the short length form; longer payloads need the extended forms.
        for len in [0, 125, 126, 70_000] {
            let text = "x".repeat(len);
            let mut wire = BytesMut::from(&PushFrame::text(&text).bytes()[..]);
            // Parsed as a client parses what a server sends.
            let (fin, op, payload) = Parser::parse(&mut wire, false, 1 << 20)
                .expect("a valid frame")
                .expect("a whole frame");
            assert!(fin);
            assert_eq!(op, OpCode::Text);
            assert_eq!(payload.as_deref().unwrap_or_default(), text.as_bytes());
            assert!(wire.is_empty(), "nothing after the frame");
        }
    }
}
