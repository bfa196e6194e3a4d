//! Sets of notification types (list filters, muted types): a bitmask over `notification::TYPES`.
use entity::notification::TYPES;

use crate::error::ApiError;

/// Some of the seed's notification types; cheap to copy, hash and compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TypeSet(u8);

impl TypeSet {
    /// The set of these names; 400 naming `field` for any unknown one.
    pub fn parse<'a>(field: &str, names: impl IntoIterator<Item = &'a str>) -> Result<Self, ApiError> {
        let mut set = Self::default();
        for name in names {
            let bit = Self::bit(name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{field}: unknown notification type {name:?}; expected one of: {}",
                    TYPES.join(", ")
                ))
            })?;
            set.0 |= bit;
        }
        Ok(set)
    }

    /// The set stored as comma-separated names; unknown names (from a later version) are skipped.
    pub fn from_stored(stored: &str) -> Self {
        Self(stored.split(',').filter_map(Self::bit).fold(0, |set, bit| set | bit))
    }

    fn bit(name: &str) -> Option<u8> {
        TYPES.iter().position(|t| *t == name).map(|i| 1 << i)
    }

    pub fn contains(self, name: &str) -> bool {
        Self::bit(name).is_some_and(|bit| self.0 & bit != 0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names in `TYPES` order.
    pub fn names(self) -> Vec<&'static str> {
        TYPES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, t)| *t)
            .collect()
    }

    /// The set as stored and as carried between nodes: comma-separated names.
    pub fn to_stored(self) -> String {
        self.names().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_and_refuse_unknown_names() {
        let set = TypeSet::parse("type", ["system", "job_post", "job_post"]).expect("known types");
        assert!(set.contains("system") && set.contains("job_post") && !set.contains("message"));
        assert_eq!(set.names(), ["job_post", "system"]);
        assert_eq!(TypeSet::from_stored(&set.to_stored()), set);
        assert!(TypeSet::from_stored("").is_empty());
        assert!(TypeSet::parse("type", ["spam"]).is_err());
        assert!(TypeSet::parse("type", [""]).is_err());
    }
}
