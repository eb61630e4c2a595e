//! The files a user writes: the inventory and recipes, parsed and validated
//! before any host is touched.

pub mod environment;
pub mod error;
pub mod inventory;
pub mod load;
pub mod local_hooks;
pub mod recipe;
pub mod rollout;
mod ssh_client;
pub mod ssh_values;
mod suggest;
mod validate;

pub use error::ConfigError;
pub use inventory::{Connection, HostKeyChecking, Inventory, Strategy};
pub use load::{LoadedInventory, load_inventory, load_inventory_in, load_recipe};
pub use recipe::{Hook, Recipe, Reuse, Step};
pub use rollout::{BatchSpec, HealthCheck, OnFailure, Rolling};
pub use ssh_client::{Multiplex, SshClient};
