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

/// Every table an import or a restore may touch, as text: compared before and after an operation
/// that must change nothing.
pub fn store_dump(d: &crate::TestDaemon) -> String {
    let conn = open_store(d);
    let mut out = String::new();
    for table in ["users", "reset_codes", "locks", "failures", "sessions"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..columns)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        for row in rows {
            out.push_str(&format!("{table}: {}\n", row.unwrap()));
        }
    }
    out
}

/// The hash string stored for `user`, read from the database file (`None`: no password).
pub fn stored_hash(d: &crate::TestDaemon, user: &str) -> Option<String> {
    open_store(d)
        .query_row("SELECT hash FROM users WHERE name = ?1", [user], |r| {
            r.get(0)
        })
        .unwrap()
}

fn open_store(d: &crate::TestDaemon) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        d.state_dir().join("credd.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}
