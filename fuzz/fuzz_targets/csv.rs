//! `credctl import`'s CSV checker on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    credd_fuzz::check_csv(data);
});
