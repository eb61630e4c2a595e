//! The one moment every host renames at. Each host's held flip reads its
//! clock for cutover (one exchange on the script's own stdin and stdout: no
//! new session, but the exchange and the lead are added to the flip); from
//! when cutover asked and when the answer came, the host's clock offset is
//! bounded. cutover then picks a moment a little ahead and gives each host
//! that moment on the host's own clock, so the renames do not wait on the
//! order the fleet's `go` lines arrive in.
//!
//! A go that arrives after its moment renames at once: a wrong reading costs
//! skew, never correctness. No host renames without its go.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Added to the slowest clock exchange to give the moment's lead: the time
/// the last `go` may take to reach its host beyond the exchange itself.
const SLACK: Duration = Duration::from_millis(10);

/// The longest lead: a fleet whose slowest exchange took longer renames
/// as its go lines arrive. (The flip script itself renames at once on a
/// moment more than 5 s ahead of its clock: a guard against a bad reading,
/// well beyond this lead and any offset a reading corrects.)
const MAX_LEAD: Duration = Duration::from_millis(500);

/// Seconds since the Unix epoch on cutover's clock.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// One reading of a host's clock: when cutover asked (on its clock), what
/// the host said, and when the answer came back (on cutover's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    pub asked: f64,
    pub host: f64,
    pub answered: f64,
}

impl ClockReading {
    /// The host's clock minus cutover's. The host read its clock between
    /// `asked` and `answered`, which bounds the offset; when zero is within
    /// the bounds (clocks kept in step, as NTP keeps a fleet and a laptop)
    /// it is taken as zero, otherwise as the middle of the bounds. Zero is
    /// preferred to the middle because a synchronised clock is nearer than
    /// the asymmetry of one exchange can tell; a host off by less than half
    /// the round trip keeps that error.
    pub fn offset(&self) -> f64 {
        let (low, high) = (self.host - self.answered, self.host - self.asked);
        if low <= 0.0 && 0.0 <= high { 0.0 } else { (low + high) / 2.0 }
    }

    /// How long the exchange took.
    pub fn round_trip(&self) -> Duration {
        Duration::try_from_secs_f64(self.answered - self.asked).unwrap_or_default()
    }
}

/// The moment picked, on cutover's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moment(f64);

impl Moment {
    /// A moment after `now` by the slowest exchange of `readings` and
    /// [`SLACK`], at most [`MAX_LEAD`] ahead.
    pub fn after(now: f64, readings: &[ClockReading]) -> Self {
        let slowest = readings.iter().map(ClockReading::round_trip).max().unwrap_or_default();
        Self(now + (slowest + SLACK).min(MAX_LEAD).as_secs_f64())
    }

    /// The moment on the clock of the host `reading` was taken from.
    pub fn on_host(self, reading: &ClockReading) -> f64 {
        self.0 + reading.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(asked: f64, host: f64, answered: f64) -> ClockReading {
        ClockReading { asked, host, answered }
    }

    #[test]
    fn a_clock_in_step_within_the_round_trip_counts_as_ours() {
        assert_eq!(reading(100.000, 100.002, 100.004).offset(), 0.0);
        assert_eq!(reading(100.000, 100.000, 100.004).offset(), 0.0, "at the edge of the bounds");
    }

    #[test]
    fn a_clock_off_by_more_than_the_round_trip_is_corrected() {
        let ahead = reading(100.000, 102.502, 100.004);
        assert!((ahead.offset() - 2.5).abs() < 1e-9, "{}", ahead.offset());
        let behind = reading(100.000, 99.002, 100.004);
        assert!((behind.offset() + 1.0).abs() < 1e-9, "{}", behind.offset());
    }

    #[test]
    fn the_moment_leads_by_the_slowest_exchange_and_lands_on_each_hosts_clock() {
        let in_step = reading(100.000, 100.001, 100.002);
        let slow = reading(100.000, 103.010, 100.020);
        let moment = Moment::after(100.030, &[in_step, slow]);
        let lead = SLACK.as_secs_f64() + 0.020;
        assert!((moment.on_host(&in_step) - (100.030 + lead)).abs() < 1e-6);
        assert!((moment.on_host(&slow) - (103.030 + lead)).abs() < 1e-6, "{}", moment.on_host(&slow));
    }

    #[test]
    fn the_lead_is_bounded() {
        let stuck = reading(100.0, 104.0, 108.0);
        assert_eq!(Moment::after(200.0, &[stuck]), Moment(200.0 + MAX_LEAD.as_secs_f64()));
        assert_eq!(Moment::after(200.0, &[]), Moment(200.0 + SLACK.as_secs_f64()));
    }
}
