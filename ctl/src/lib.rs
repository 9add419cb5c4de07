//! credctl as a library: its modules, so that the binary, the fuzz targets and the property
//! tests drive the same parsers.

pub mod adminlog;
pub mod backup;
pub mod cli;
pub mod codesfile;
pub mod commands;
pub mod error;
pub mod import;
pub mod output;
pub mod password;
pub mod shadow;
