//! The request decoder on one frame body: the JSON envelope and every request type.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    credd_fuzz::check_request_body(data);
});
