//! The rules, as pure decisions over (state, settings, now): lockout and its ramp, rate limits,
//! password quality, reset codes. Nothing here reads a file, a socket, the store or the clock.

pub mod codes;
pub mod lockout;
pub mod quality;
pub mod ramp;
pub mod ratelimit;
pub mod source;
