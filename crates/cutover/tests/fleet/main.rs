//! The `cutover` binary against real hosts: containers running sshd, nginx
//! and PHP-FPM, built locally from `tests/image`. Every test starts its own
//! fleet, so the tests run in parallel. Without a Docker engine each test
//! skips loudly (or fails, with `CUTOVER_REQUIRE_DOCKER=1`).
#![allow(clippy::print_stderr)]

mod activation;
mod adoption;
mod check;
mod failures;
mod faults;
mod harness;
mod laravel;
mod leftovers;
mod lifecycle;
mod migrations;
mod reports;
mod secrets;
mod smoke;
mod stock_host;
mod symfony;
mod zero_downtime;
