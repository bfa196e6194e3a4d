//! Sets of notification types (list filters, muted types): a bitset over `NotificationType`'s
//! variants.
use entity::notification::NotificationType;
use sea_orm::{ActiveEnum, Iterable};

use crate::{domain::known, error::ApiError};

/// Some of the seed's notification types; cheap to copy, hash and compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TypeSet(u8);

impl TypeSet {
    /// The set of these names; 400 naming `field` for any unknown one.
    pub fn parse<'a>(field: &str, names: impl IntoIterator<Item = &'a str>) -> Result<Self, ApiError> {
        names.into_iter().try_fold(Self::default(), |set, name| {
            let kind = known(name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{field}: unknown notification type {name:?}; expected one of: {}",
                    NotificationType::values().join(", ")
                ))
            })?;
            Ok(set.with(kind))
        })
    }

    /// The set stored as comma-separated names; unknown names (from a later version) are skipped.
    pub fn from_stored(stored: &str) -> Self {
        stored.split(',').filter_map(known).fold(Self::default(), Self::with)
    }

    /// The variant's bit: its place in the declaration (variants are numbered from 0).
    fn bit(kind: NotificationType) -> u8 {
        1 << kind as u8
    }

    fn with(self, kind: NotificationType) -> Self {
        Self(self.0 | Self::bit(kind))
    }

    pub fn contains(self, kind: NotificationType) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The types in declaration order (`job_application` first, `system` last).
    pub fn iter(self) -> impl Iterator<Item = NotificationType> {
        NotificationType::iter().filter(move |kind| self.contains(*kind))
    }

    /// The set as stored and as carried between nodes: comma-separated names.
    pub fn to_stored(self) -> String {
        self.iter().map(|kind| kind.to_value()).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_bit_of_its_own() {
        let kinds: Vec<NotificationType> = NotificationType::iter().collect();
        assert!(kinds.len() <= u8::BITS as usize, "TypeSet needs a wider integer");
        let all = kinds.iter().copied().fold(TypeSet::default(), TypeSet::with);
        assert_eq!(all.iter().collect::<Vec<_>>(), kinds);
        assert_eq!(all.0.count_ones() as usize, kinds.len());
    }

    #[test]
    fn sets_round_trip_and_refuse_unknown_names() {
        use NotificationType::{JobPost, Message, System};
        let set = TypeSet::parse("type", ["system", "job_post", "job_post"]).expect("known types");
        assert!(set.contains(System) && set.contains(JobPost) && !set.contains(Message));
        assert_eq!(set.iter().collect::<Vec<_>>(), [JobPost, System]);
        assert_eq!(set.to_stored(), "job_post,system");
        assert_eq!(TypeSet::from_stored(&set.to_stored()), set);
        assert_eq!(TypeSet::from_stored("job_post,later_type,system"), set);
        assert!(TypeSet::from_stored("").is_empty());
        assert!(TypeSet::parse("type", ["spam"]).is_err());
        assert!(TypeSet::parse("type", [""]).is_err());
    }
}
