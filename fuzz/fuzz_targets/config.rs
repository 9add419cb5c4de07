//! credd's config parser (strict TOML, then validation) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // credd reads the file with `read_to_string`: text that is not UTF-8 never reaches the parser.
    if let Ok(text) = std::str::from_utf8(data) {
        credd_fuzz::check_config(text);
    }
});
