//! Release ids: the UTC timestamp `YYYYMMDDHHMMSS` that names a release
//! directory, chosen once per run and the same on every host; and the
//! numbered releases (`1`, `2`, `3`) Deployer leaves on a server cutover
//! adopts (see [`crate::remote::adopt`]), which sort before every id of
//! cutover's own.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// The name of one release directory under `releases/`.
///
/// Ids compare in time order because they are fixed-width digits; a
/// numbered release of Deployer's is a number below every such id, so it
/// sorts before them, and among them by number (which the probe checks is
/// the order of Deployer's log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReleaseId(u64);

/// A directory name that is not a release id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a release id (expected 14 digits, YYYYMMDDHHMMSS, or a number Deployer gave)")]
pub struct NotAReleaseId(pub String);

/// The smallest of cutover's own ids: numbers below it are Deployer's.
const OWN: u64 = 10_000_000_000_000;

impl ReleaseId {
    /// The id for an instant, in UTC.
    pub fn at(instant: Timestamp) -> Self {
        let dt = instant.to_zoned(TimeZone::UTC).datetime();
        let digits = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        Self(digits.parse().unwrap_or_default())
    }

    /// Chooses a new id for a run starting at `now`: the id of `now`, or, if
    /// any host already has that id or a later one, the next free second
    /// after the newest existing one. Two runs in one second thus never
    /// share an id, and no id on any host is ever reused.
    pub fn choose<'a>(now: Timestamp, existing: impl IntoIterator<Item = &'a ReleaseId>) -> Self {
        let candidate = Self::at(now);
        match existing.into_iter().max() {
            Some(newest) if *newest >= candidate => newest.next(),
            _ => candidate,
        }
    }

    /// Whether it is a release Deployer numbered, not one of cutover's.
    pub fn is_adopted(self) -> bool {
        self.0 < OWN
    }

    /// The id one second later.
    pub fn next(self) -> Self {
        match self.timestamp() {
            Some(ts) => Self::at(ts + jiff::SignedDuration::from_secs(1)),
            None => Self(self.0 + 1),
        }
    }

    fn timestamp(self) -> Option<Timestamp> {
        let s = self.to_string();
        let dt = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", &s).ok()?;
        dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_adopted() { write!(f, "{}", self.0) } else { write!(f, "{:014}", self.0) }
    }
}

impl FromStr for ReleaseId {
    type Err = NotAReleaseId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not = || NotAReleaseId(s.to_owned());
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not());
        }
        if s.len() == 14 {
            jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", s).map_err(|_| not())?;
            return s.parse().map(Self).map_err(|_| not());
        }
        // Deployer's numbering: 1, 2, 3, ... as `.dep/latest_release` + 1.
        let numbered = s.len() <= 12 && !s.starts_with('0');
        if !numbered {
            return Err(not());
        }
        s.parse().map(Self).map_err(|_| not())
    }
}

impl TryFrom<String> for ReleaseId {
    type Error = NotAReleaseId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ReleaseId> for String {
    fn from(id: ReleaseId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ReleaseId {
        s.parse().expect("valid id")
    }

    #[test]
    fn formats_utc_timestamp() {
        let ts: Timestamp = "2026-11-23T14:30:12Z".parse().expect("timestamp");
        assert_eq!(ReleaseId::at(ts).to_string(), "20261123143012");
    }

    #[test]
    fn orders_by_time() {
        assert!(id("20261123120433") < id("20261123143012"));
        assert!(id("20251231235959") < id("20260101000000"));
    }

    #[test]
    fn rejects_names_that_are_not_ids() {
        for name in ["current", "2026112314301", "20261323143012", "2026112314301x", "", "0", "007", "-3", "3.1"] {
            assert!(name.parse::<ReleaseId>().is_err(), "{name}");
        }
    }

    #[test]
    fn deployers_numbered_releases_sort_before_every_own_id_and_by_number() {
        let (one, two, ten) = (id("1"), id("2"), id("10"));
        assert!(one < two && two < ten && ten < id("20000101000000"));
        assert!(ten.is_adopted() && !id("20261123143012").is_adopted());
        assert_eq!(ten.to_string(), "10", "shown as Deployer named it");
        let now: Timestamp = "2026-11-23T14:30:12Z".parse().expect("timestamp");
        assert_eq!(ReleaseId::choose(now, &[one, ten]), id("20261123143012"));
    }

    #[test]
    fn next_rolls_over_minutes_and_days() {
        assert_eq!(id("20261123235959").next(), id("20261124000000"));
    }

    #[test]
    fn choose_never_reuses_an_existing_id() {
        let now: Timestamp = "2026-11-23T14:30:12Z".parse().expect("timestamp");
        let taken = [id("20261123143012")];
        assert_eq!(ReleaseId::choose(now, &taken), id("20261123143013"));
        let older = [id("20261123120000")];
        assert_eq!(ReleaseId::choose(now, &older), id("20261123143012"));
        let future = [id("20261123150000")];
        assert_eq!(ReleaseId::choose(now, &future), id("20261123150001"));
    }
}
