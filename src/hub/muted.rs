//! Each user's muted types as the hub holds them, kept right while a reload races live changes.
use std::collections::HashMap;

use entity::notification::NotificationType;

use crate::type_set::TypeSet;

/// The muted types of every user who mutes something.
#[derive(Default)]
pub struct MutedTypes {
    by_user: HashMap<i32, TypeSet>,
    /// While a reload from the database is in flight: the changes made meanwhile, newer than
    /// what the reload will bring.
    changed_while_loading: Option<HashMap<i32, TypeSet>>,
}

impl MutedTypes {
    /// Whether `user_id` muted notifications of type `kind`.
    pub fn is_muted(&self, user_id: i32, kind: &NotificationType) -> bool {
        self.by_user.get(&user_id).is_some_and(|muted| muted.contains(*kind))
    }

    /// Records a change (an empty set is forgotten).
    pub fn set(&mut self, user_id: i32, muted: TypeSet) {
        if let Some(changed) = &mut self.changed_while_loading {
            changed.insert(user_id, muted);
        }
        if muted.is_empty() {
            self.by_user.remove(&user_id);
        } else {
            self.by_user.insert(user_id, muted);
        }
    }

    /// A reload has started: changes from now on outrank what it brings.
    pub fn loading(&mut self) {
        self.changed_while_loading.get_or_insert_with(HashMap::new);
    }

    /// A reload finished with `all`; the changes made while it ran are applied over it.
    pub fn loaded(&mut self, all: HashMap<i32, TypeSet>) {
        let changed = self.changed_while_loading.take().unwrap_or_default();
        self.by_user = all;
        for (user_id, muted) in changed {
            self.set(user_id, muted);
        }
    }

    /// A reload failed: what is held stays.
    pub fn load_failed(&mut self) {
        self.changed_while_loading = None;
    }
}

#[cfg(test)]
mod tests {
    use NotificationType::{JobPost, Message, PostLike};

    use super::*;

    fn set(names: &[&str]) -> TypeSet {
        TypeSet::parse("muted_types", names.iter().copied()).expect("known types")
    }

    #[test]
    fn a_reload_does_not_undo_a_change_made_while_it_ran() {
        let mut muted = MutedTypes::default();
        muted.set(1, set(&["message"]));
        muted.loading();
        muted.set(2, set(&["job_post"]));
        muted.set(1, TypeSet::default());
        // The snapshot was read before both changes.
        muted.loaded(HashMap::from([(1, set(&["message"])), (3, set(&["post_like"]))]));
        assert!(!muted.is_muted(1, &Message), "unmuted while loading");
        assert!(muted.is_muted(2, &JobPost), "muted while loading");
        assert!(muted.is_muted(3, &PostLike), "from the database");
        assert!(!muted.is_muted(3, &Message));
    }
}
