//! The frame reader on a byte stream: any number of frames, each decoded as a request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    credd_fuzz::check_frames(data);
});
