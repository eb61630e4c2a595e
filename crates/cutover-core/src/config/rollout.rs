//! How the fleet switches: the rolling batches, the load-balancer hooks
//! around each batch, the health check after each switch, and what to do
//! when something fails after switching began.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One batch size: a number of hosts or a percentage of the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BatchSize {
    Hosts(usize),
    Percent(u8),
}

impl BatchSize {
    /// The number of hosts for a fleet of `total` (at least one).
    pub fn hosts(self, total: usize) -> usize {
        match self {
            Self::Hosts(n) => n.max(1),
            Self::Percent(p) => (total * usize::from(p)).div_ceil(100).max(1),
        }
    }
}

impl FromStr for BatchSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Self::Percent(p)),
                _ => Err(format!("`{s}` is not a percentage from 1% to 100%")),
            };
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Self::Hosts(n)),
            _ => Err(format!("`{s}` is not a batch size (a number of hosts like `2`, or a percentage like `25%`)")),
        }
    }
}

/// The batches of a rolling switch, as Ansible's `serial`: sizes in order,
/// the last one repeated until every host switched. `[1, 25%, 100%]` is a
/// canary of one, then a quarter of the fleet, then the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchSpec(pub Vec<BatchSize>);

impl Default for BatchSpec {
    fn default() -> Self {
        Self(vec![BatchSize::Hosts(1)])
    }
}

impl BatchSpec {
    /// Splits `total` hosts into batches: the number of hosts in each.
    pub fn split(&self, total: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut left = total;
        let mut specs = self.0.iter();
        let mut current = specs.next().copied().unwrap_or(BatchSize::Hosts(1));
        while left > 0 {
            let n = current.hosts(total).min(left);
            sizes.push(n);
            left -= n;
            if let Some(next) = specs.next() {
                current = *next;
            }
        }
        sizes
    }
}

impl FromStr for BatchSpec {
    type Err = String;

    /// `2`, `25%`, or a comma-separated list `1,25%,100%` (the `--batch` flag).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_start_matches('[').trim_end_matches(']');
        s.split(',').map(BatchSize::from_str).collect::<Result<Vec<_>, _>>().map(Self)
    }
}

impl<'de> Deserialize<'de> for BatchSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BatchVisitor)
    }
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = BatchSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch size (`2` or `25%`) or a list of them (`[1, 25%, 100%]`)")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<BatchSpec, E> {
        v.to_string().parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<BatchSpec, E> {
        v.to_string().parse().map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<BatchSpec, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BatchSpec, A::Error> {
        let mut sizes = Vec::new();
        while let Some(item) = seq.next_element::<BatchItem>()? {
            sizes.push(item.0);
        }
        if sizes.is_empty() {
            return Err(de::Error::custom("the batch list is empty"));
        }
        Ok(BatchSpec(sizes))
    }
}

/// One element of a batch list.
struct BatchItem(BatchSize);

impl<'de> Deserialize<'de> for BatchItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = deserializer.deserialize_any(BatchVisitor)?;
        match spec.0.as_slice() {
            [one] => Ok(Self(*one)),
            _ => Err(de::Error::custom("a batch list holds sizes, not lists")),
        }
    }
}

/// Settings of the rolling strategy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rolling {
    /// Batch sizes.
    #[serde(default)]
    pub batch: BatchSpec,
    /// Seconds to wait between batches.
    #[serde(default)]
    pub pause: u64,
    /// Run before a batch switches: take its hosts out of the load balancer.
    #[serde(default)]
    pub drain: Option<BatchHook>,
    /// Run after a batch switched and passed its health check.
    #[serde(default)]
    pub undrain: Option<BatchHook>,
}

/// A command run around a batch.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHook {
    /// Shell text. It sees CUTOVER_BATCH (1, 2, ...), CUTOVER_BATCH_HOSTS and
    /// CUTOVER_BATCH_ADDRESSES (space-separated).
    pub run: String,
    /// `local` (where cutover runs, once per batch) or `hosts` (on each host
    /// of the batch).
    #[serde(default)]
    pub on: HookPlace,
    /// Seconds it may take.
    #[serde(default = "default_hook_timeout")]
    pub timeout: u64,
}

fn default_hook_timeout() -> u64 {
    120
}

/// Where a batch hook runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPlace {
    #[default]
    Local,
    Hosts,
}

/// The check that a switched host serves: an HTTP request from the host to
/// itself, or a command on the host.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Requested with curl on the host, e.g. `http://127.0.0.1/health`.
    #[serde(default)]
    pub url: Option<String>,
    /// Instead of `url`: a command that must exit 0.
    #[serde(default)]
    pub command: Option<String>,
    /// The HTTP status expected.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Text the response body must contain.
    #[serde(default)]
    pub body: Option<String>,
    /// Seconds one attempt may take.
    #[serde(default = "default_check_timeout")]
    pub timeout: u64,
    /// Attempts before the host is declared unhealthy.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds between attempts.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_status() -> u16 {
    200
}

fn default_check_timeout() -> u64 {
    5
}

fn default_retries() -> u32 {
    3
}

fn default_interval() -> u64 {
    1
}

/// What happens when a flip, reload, health check or hook fails after
/// switching began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Put every host switched in this run back, reload, exit 3.
    #[default]
    Rollback,
    /// Stop where it is and exit 4 with the state of each host.
    Halt,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> BatchSpec {
        s.parse().expect("batch spec")
    }

    #[test]
    fn counts_percentages_and_lists_split_a_fleet() {
        assert_eq!(spec("2").split(5), vec![2, 2, 1]);
        assert_eq!(spec("25%").split(8), vec![2, 2, 2, 2]);
        assert_eq!(spec("1,25%,100%").split(10), vec![1, 3, 6]);
        assert_eq!(spec("[1, 100%]").split(1), vec![1]);
        assert_eq!(spec("50%").split(3), vec![2, 1]);
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in ["0", "0%", "101%", "x", "", "1,,2"] {
            assert!(bad.parse::<BatchSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn yaml_forms_parse() {
        #[derive(Deserialize)]
        struct W {
            batch: BatchSpec,
        }
        let w: W = serde_saphyr::from_str("batch: [1, 25%, 100%]\n").expect("list");
        assert_eq!(w.batch, spec("1,25%,100%"));
        let w: W = serde_saphyr::from_str("batch: 2\n").expect("count");
        assert_eq!(w.batch, spec("2"));
        let err = serde_saphyr::from_str::<W>("batch: 0\n").err().expect("refused");
        assert!(err.to_string().contains("not a batch size"), "{err}");
    }
}
