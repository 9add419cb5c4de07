//! credd as a library: the daemon's modules, so that the binary, the fuzz targets and the
//! property tests drive the same code. The folders are the layers, lowest first; a module uses
//! only those below it (docs/architecture.md has the map).

pub mod alerts;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod error;
pub mod handlers;
pub mod policy;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;
pub mod system;
