//! Password hashing and everything that costs CPU per secret: the PHC hash strings, the PBKDF2
//! loops (portable and SHA-NI), crypt(3) hashes taken over from /etc/shadow, the keyed names of
//! in-memory tables, and the bounded pool that runs the hashing.

pub mod crypt;
pub mod hashing;
pub mod kdf;
#[cfg(target_arch = "x86_64")]
pub mod kdf_shani;
pub mod namekey;
pub mod pool;
