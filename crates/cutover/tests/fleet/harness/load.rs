//! A zero-downtime probe: client threads sending a steady stream of HTTP
//! requests to every host's nginx while `cutover` switches the fleet, each
//! request recorded with its host, start, end, status (or connection error)
//! and body; then a verdict against the `switched` events of the runs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::fleet::Fleet;

/// One request of the probe.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The host's index in the fleet.
    pub host: usize,
    pub path: String,
    /// Just before the client connected.
    pub start: Timestamp,
    /// When the response was read to its end (or the request failed).
    pub end: Timestamp,
    /// The status and body, or what went wrong with the connection.
    pub result: Result<(u16, String), String>,
}

/// Client threads running until [`Load::stop`].
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Sample>>>,
}

impl Fleet {
    /// Starts one client thread per host and path in `paths` (a path twice is
    /// two clients). Each client sends one request at a time, on a new
    /// connection, until the load is stopped.
    pub fn start_load(&self, paths: &[&str]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (host, h) in self.hosts.iter().enumerate() {
            for path in paths {
                let addr = SocketAddr::from(([127, 0, 0, 1], h.http_port));
                let path = (*path).to_owned();
                let stop = Arc::clone(&stop);
                threads.push(std::thread::spawn(move || client(host, addr, &path, &stop)));
            }
        }
        Load { stop, threads }
    }
}

impl Load {
    /// Stops every client after its request in flight; all the samples.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        let mut samples: Vec<Sample> =
            self.threads.into_iter().flat_map(|t| t.join().expect("probe client thread")).collect();
        samples.sort_by_key(|s| s.start);
        samples
    }
}

fn client(host: usize, addr: SocketAddr, path: &str, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let start = Timestamp::now();
        let result = request(addr, path);
        samples.push(Sample { host, path: path.to_owned(), start, end: Timestamp::now(), result });
        // A breath between requests, so two cores keep up with nine clients.
        std::thread::sleep(Duration::from_millis(15));
    }
    samples
}

/// `GET path` (HTTP/1.0, so the server closes the connection): status, body.
fn request(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read: {e}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP head in {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {response:?}"))?;
    Ok((status, body.trim().to_owned()))
}

/// A host's `current` renamed to `to`, as the `switched` event said, by a
/// run that the test started at `run_started`.
#[derive(Debug, Clone)]
pub struct Switch {
    pub host: String,
    pub to: String,
    pub at: Timestamp,
    pub run_started: Timestamp,
}

/// The `switched` events among `events` of a run started at `run_started`.
pub fn switches(events: &[Value], run_started: Timestamp) -> Vec<Switch> {
    events
        .iter()
        .filter(|e| e["event"] == "switched")
        .map(|e| Switch {
            host: e["host"].as_str().expect("switched.host").to_owned(),
            to: e["to"].as_str().expect("switched.to").to_owned(),
            at: e["at"].as_str().expect("switched.at").parse().unwrap_or_else(|err| panic!("switched.at: {err}: {e}")),
            run_started,
        })
        .collect()
}

/// Whether `body` is a page of release `rel` at version `ver`: the test
/// application's `<ver> <rel> opcache`, or the Laravel application's
/// `<ver> <rel> migrations=...`.
fn names(body: &str, ver: &str, rel: &str) -> bool {
    *body == format!("{ver} {rel} opcache") || body.starts_with(&format!("{ver} {rel} migrations="))
}

/// What the probe saw, judged.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Requests per host, in host order.
    pub per_host: Vec<usize>,
    /// Requests per host that were in flight while that host switched.
    pub across_switch: Vec<usize>,
    /// Requests answered with another status than 200.
    pub not_ok: Vec<String>,
    /// Requests whose connection failed (refused, reset, timed out).
    pub errors: Vec<String>,
    /// 200s naming no release involved, or not in the expected shape.
    pub foreign: Vec<String>,
    /// Requests naming a release their host was not serving while they ran.
    pub stale: Vec<String>,
}

impl Verdict {
    /// Judges `samples` of a fleet whose hosts all served `initial` before
    /// the `switches` (of every run, in any order). `releases` are the
    /// `(version, release id)` pairs involved.
    ///
    /// Which release a request may name: the one its host last switched to
    /// before the request started (or `initial`), or the target of a switch
    /// of that host that may have happened while the request ran: one whose
    /// event came after the request started, by a run started before the
    /// request ended. This is exact, with no margin: a switch's `at` is
    /// taken after the host's flip script returned, so its `rename(2)`
    /// happened between the run's start and `at`; nginx resolves
    /// `$realpath_root` per request, after the request arrived; and PHP-FPM
    /// runs the script by that real path (OPcache keys by it), so even a
    /// worker from before the reload runs the new release's file. A request
    /// that started after its host switched, with no other run under way,
    /// must therefore name exactly the release it switched to.
    pub fn judge(
        fleet: &Fleet,
        samples: &[Sample],
        releases: &[(&str, &str)],
        initial: &str,
        switches: &[Switch],
    ) -> Self {
        let mut v =
            Self { per_host: vec![0; fleet.hosts.len()], across_switch: vec![0; fleet.hosts.len()], ..Self::default() };
        for s in samples {
            let name = &fleet.hosts[s.host].name;
            let what = format!("{name} GET {} started {} ended {}", s.path, s.start, s.end);
            v.per_host[s.host] += 1;
            let host_switches: Vec<&Switch> = switches.iter().filter(|w| &w.host == name).collect();
            if host_switches.iter().any(|w| s.start <= w.at && w.at <= s.end) {
                v.across_switch[s.host] += 1;
            }
            let (status, body) = match &s.result {
                Err(e) => {
                    v.errors.push(format!("{what}: {e}"));
                    continue;
                }
                Ok((status, body)) => (*status, body),
            };
            if status != 200 {
                let title = body.split("<title>").nth(1).and_then(|t| t.split('<').next()).unwrap_or(body);
                v.not_ok.push(format!("{what}: {status} {title:?}"));
                continue;
            }
            let Some(release) = releases.iter().find(|(ver, rel)| names(body, ver, rel)).map(|r| r.1) else {
                v.foreign.push(format!("{what}: {body:?}"));
                continue;
            };
            let before =
                host_switches.iter().filter(|w| w.at < s.start).max_by_key(|w| w.at).map_or(initial, |w| w.to.as_str());
            let during =
                host_switches.iter().filter(|w| w.at >= s.start && w.run_started <= s.end).map(|w| w.to.as_str());
            let allowed: Vec<&str> = std::iter::once(before).chain(during).collect();
            if !allowed.contains(&release) {
                v.stale.push(format!("{what}: {body:?}, but only {allowed:?} could be live"));
            }
        }
        v
    }

    /// Every request counted, and what went wrong (up to five of each).
    pub fn describe(&self) -> String {
        let mut text = format!(
            "requests per host {:?} (in flight across a switch {:?}); non-200: {}, connection errors: {}, \
             foreign bodies: {}, not the live release: {}",
            self.per_host,
            self.across_switch,
            self.not_ok.len(),
            self.errors.len(),
            self.foreign.len(),
            self.stale.len(),
        );
        for (what, list) in
            [("non-200", &self.not_ok), ("errors", &self.errors), ("foreign", &self.foreign), ("not live", &self.stale)]
        {
            for line in list.iter().take(5) {
                text.push_str(&format!("\n  {what}: {line}"));
            }
        }
        text
    }
}
