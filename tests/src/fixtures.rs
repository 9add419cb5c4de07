//! Test inputs computed the way credd's users produce them.

use pbkdf2::password_hash::CustomizedPasswordHasher;
use pbkdf2::phc::PasswordHash;
use pbkdf2::{Params, Pbkdf2};

/// A PHC `$pbkdf2-sha256$` string for `password`, as another system (or an earlier credd) would
/// hand it over in an import file.
pub fn phc_hash(password: &str, iterations: u32) -> String {
    let salt = std::process::id().to_be_bytes().repeat(4);
    let params = Params::new_with_output_len(iterations, 32).unwrap();
    let hash: PasswordHash = Pbkdf2::default()
        .hash_password_customized(password.as_bytes(), &salt, None, None, params)
        .unwrap();
    hash.to_string()
}
